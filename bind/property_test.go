package bind

import (
	"context"
	"maps"
	"testing"

	"pgregory.net/rapid"
)

// scope is one context in a nesting sequence with the values the model
// says each binding holds there; a missing entry means unbound.
type scope struct {
	ctx  context.Context
	want map[int]int
}

// TestPropertyShadowingUnwinds binds, pops and layers foreign contexts in
// random order, then checks every context ever made against the model:
// the innermost Bind wins, and popping a scope never changes what an
// outer (or abandoned) context reads.
func TestPropertyShadowingUnwinds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bs := []*Binding[int]{New(-1), New(-2), New(-3)}
		stack := []scope{{ctx: context.Background(), want: map[int]int{}}}
		all := stack
		steps := rapid.IntRange(0, 60).Draw(t, "steps")
		for range steps {
			top := stack[len(stack)-1]
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0, 1:
				i := rapid.IntRange(0, len(bs)-1).Draw(t, "binding")
				v := rapid.IntRange(-3, 3).Draw(t, "value")
				f := scope{ctx: bs[i].Bind(top.ctx, v), want: maps.Clone(top.want)}
				f.want[i] = v
				stack, all = append(stack, f), append(all, f)
			case 2:
				f := scope{ctx: context.WithValue(top.ctx, otherKey{}, 0), want: top.want}
				stack, all = append(stack, f), append(all, f)
			case 3:
				if len(stack) > 1 {
					stack = stack[:len(stack)-1]
				}
			}
			checkFrames(t, bs, stack)
		}
		checkFrames(t, bs, all)
	})
}

func checkFrames(t *rapid.T, bs []*Binding[int], frames []scope) {
	for depth, f := range frames {
		for i, b := range bs {
			want, wantOK := f.want[i]
			if !wantOK {
				want = b.def
			}
			if got, ok := b.Lookup(f.ctx); got != want || ok != wantOK {
				t.Fatalf("frame %d binding %d: Lookup = %d, %v; want %d, %v",
					depth, i, got, ok, want, wantOK)
			}
		}
	}
}
