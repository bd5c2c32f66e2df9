package bind

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

type otherKey struct{}

func TestGet(t *testing.T) {
	bg := context.Background()
	n, other := New(7), New(7)
	canceled, cancel := context.WithCancel(n.Bind(bg, 4))
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		want   int
		wantOK bool
	}{
		{"unbound", bg, 7, false},
		{"nil ctx", nil, 7, false},
		{"bound", n.Bind(bg, 1), 1, true},
		{"bound to zero", n.Bind(bg, 0), 0, true},
		{"bound to default", n.Bind(bg, 7), 7, true},
		{"nested shadows", n.Bind(n.Bind(bg, 1), 2), 2, true},
		{"other binding of same type", other.Bind(bg, 3), 7, false},
		{"below canceled context", canceled, 4, true},
		{"below WithoutCancel", context.WithoutCancel(n.Bind(bg, 5)), 5, true},
		{"below other layers", other.Bind(context.WithValue(n.Bind(bg, 6), otherKey{}, 1), 9), 6, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := n.Lookup(tt.ctx)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Lookup = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
			if got := n.Get(tt.ctx); got != tt.want {
				t.Errorf("Get = %d; want %d", got, tt.want)
			}
		})
	}
}

func TestScopeUnwinds(t *testing.T) {
	bg := context.Background()
	n := New("default")
	outer := n.Bind(bg, "outer")
	inner := n.Bind(outer, "inner")
	sibling := n.Bind(outer, "sibling")
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"background", bg, "default"},
		{"outer", outer, "outer"},
		{"inner", inner, "inner"},
		{"sibling", sibling, "sibling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := n.Get(tt.ctx); got != tt.want {
				t.Errorf("Get = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestCancelPassesThrough(t *testing.T) {
	n := New(0)
	parent, cancel := context.WithCancel(context.Background())
	child, cancelChild := context.WithCancel(n.Bind(n.Bind(parent, 1), 2))
	defer cancelChild()
	cancel()
	<-child.Done()
	if got := n.Get(child); got != 2 {
		t.Errorf("Get = %d; want 2", got)
	}
	if !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("child.Err() = %v; want %v", child.Err(), context.Canceled)
	}
}

func TestBindNilInterface(t *testing.T) {
	errDefault := errors.New("default")
	e := New(errDefault)
	ctx := e.Bind(context.Background(), nil)
	got, ok := e.Lookup(ctx)
	if got != nil || !ok {
		t.Errorf("Lookup = %v, %v; want <nil>, true", got, ok)
	}
	if got := e.Get(context.Background()); got != errDefault {
		t.Errorf("unbound Get = %v; want %v", got, errDefault)
	}
}

func TestWith(t *testing.T) {
	n := New(0)
	bg := context.Background()
	called := false
	n.With(bg, 1, func(ctx context.Context) {
		called = true
		if got := n.Get(ctx); got != 1 {
			t.Errorf("Get inside With = %d; want 1", got)
		}
	})
	if !called {
		t.Fatal("With did not call f")
	}
	if got := n.Get(bg); got != 0 {
		t.Errorf("Get after With = %d; want 0", got)
	}
}

func TestZeroBinding(t *testing.T) {
	var z Binding[int]
	ctx := New(1).Bind(context.Background(), 2)
	if got, ok := z.Lookup(ctx); got != 0 || ok {
		t.Errorf("zero Lookup = %d, %v; want 0, false", got, ok)
	}
	wantPanic(t, "zero Binding", func() { z.Bind(ctx, 3) })
	var zr Ref[int]
	wantPanic(t, "zero Ref", func() { zr.Bind(ctx, new(int)) })
}

func TestBindNilParentPanics(t *testing.T) {
	var nilCtx context.Context
	wantPanic(t, "nil parent", func() { New(0).Bind(nilCtx, 1) })
}

func wantPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic; want one", name)
		}
	}()
	f()
}

func TestString(t *testing.T) {
	bg := context.Background()
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"int", New(0).Bind(bg, 1), "context.Background.Bind(int)"},
		{"error", New[error](nil).Bind(bg, nil), "context.Background.Bind(error)"},
		{"ref", NewRef[sync.Mutex](nil).Bind(bg, nil), "context.Background.Bind(*sync.Mutex)"},
		{"nested", New(0).Bind(New("").Bind(bg, "x"), 1), "context.Background.Bind(string).Bind(int)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(tt.ctx); got != tt.want {
				t.Errorf("String = %q; want %q", got, tt.want)
			}
		})
	}
}

type big [64]int

func TestReadsDoNotAllocate(t *testing.T) {
	bg := context.Background()
	n := New(7)
	e := New[error](nil)
	b := New(big{})
	r := NewRef[big](nil)
	var nilCtx context.Context
	tests := []struct {
		name string
		read func()
	}{
		{"unbound", func() { _ = n.Get(bg) }},
		{"nil ctx", readFn(n, nilCtx)},
		{"bound", readFn(n, n.Bind(bg, 1000))},
		{"depth=100", readFn(n, layers(n.Bind(bg, 1000), 100))},
		{"interface", readFn(e, e.Bind(bg, errors.New("x")))},
		{"big struct", readFn(b, b.Bind(bg, big{}))},
		{"ref", readFn(&r.Binding, r.Bind(bg, &big{}))},
		{"lookup", lookupFn(n, n.Bind(bg, 1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.read); got != 0 {
				t.Errorf("allocs per read = %v; want 0", got)
			}
		})
	}
}

func readFn[T any](b *Binding[T], ctx context.Context) func() {
	return func() { _ = b.Get(ctx) }
}

func lookupFn[T any](b *Binding[T], ctx context.Context) func() {
	return func() { _, _ = b.Lookup(ctx) }
}

// layers wraps ctx in depth bindings of other, fresh bindings, so a read
// of an outer binding has to walk past all of them.
func layers(ctx context.Context, depth int) context.Context {
	for i := range depth {
		ctx = New(0).Bind(ctx, i)
	}
	return ctx
}

func TestConcurrentScopes(t *testing.T) {
	id := New(-1)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			ctx := id.Bind(context.Background(), g)
			for i := range 500 {
				inner := id.Bind(ctx, g*1000+i)
				if got := id.Get(inner); got != g*1000+i {
					t.Errorf("goroutine %d: inner Get = %d; want %d", g, got, g*1000+i)
				}
				if got := id.Get(ctx); got != g {
					t.Errorf("goroutine %d: outer Get = %d; want %d", g, got, g)
				}
			}
		})
	}
	wg.Wait()
}

func TestSharedParentAcrossGoroutines(t *testing.T) {
	id, role := New(-1), New("follower")
	parent := role.Bind(context.Background(), "leader")
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			ctx := id.Bind(parent, g)
			for range 500 {
				if got := id.Get(ctx); got != g {
					t.Errorf("goroutine %d: id = %d; want %d", g, got, g)
				}
				if got := role.Get(ctx); got != "leader" {
					t.Errorf("goroutine %d: role = %q; want leader", g, got)
				}
			}
		})
	}
	wg.Wait()
	if got := id.Get(parent); got != -1 {
		t.Errorf("parent id = %d; want -1", got)
	}
}

func BenchmarkGet(b *testing.B) {
	bg := context.Background()
	n := New(7)
	b.Run("unbound", benchGet(n, bg))
	b.Run("bound", benchGet(n, n.Bind(bg, 1)))
	for _, depth := range []int{1, 10, 100} {
		name := fmt.Sprintf("depth=%d", depth)
		b.Run(name, benchGet(n, layers(n.Bind(bg, 1), depth)))
	}
	b.Run("parallel", func(b *testing.B) {
		ctx := n.Bind(bg, 1)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = n.Get(ctx)
			}
		})
	})
}

func benchGet[T any](bd *Binding[T], ctx context.Context) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = bd.Get(ctx)
		}
	}
}

// sinkCtx keeps benchmarked contexts on the heap, as in real use.
var sinkCtx context.Context

func BenchmarkBind(b *testing.B) {
	bg := context.Background()
	n, r := New(0), NewRef[big](nil)
	shared := &big{}
	b.Run("value", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sinkCtx = n.Bind(bg, i)
		}
	})
	b.Run("ref", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkCtx = r.Bind(bg, shared)
		}
	})
}
