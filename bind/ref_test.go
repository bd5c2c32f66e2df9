package bind

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

func TestRef(t *testing.T) {
	bg := context.Background()
	def, a, b := new(int), new(int), new(int)
	r := NewRef(def)
	tests := []struct {
		name   string
		ctx    context.Context
		want   *int
		wantOK bool
	}{
		{"unbound", bg, def, false},
		{"bound", r.Bind(bg, a), a, true},
		{"nested", r.Bind(r.Bind(bg, a), b), b, true},
		{"bound to nil", r.Bind(bg, nil), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := r.Lookup(tt.ctx)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Lookup = %p, %v; want %p, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRefSharedAcrossGoroutines(t *testing.T) {
	applied := NewRef[atomic.Int64](nil)
	var total atomic.Int64
	ctx := applied.Bind(context.Background(), &total)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 1000 {
				applied.Get(ctx).Add(1)
			}
		})
	}
	wg.Wait()
	if got := total.Load(); got != 16*1000 {
		t.Errorf("total = %d; want %d", got, 16*1000)
	}
}

func TestNewRefNilDefault(t *testing.T) {
	r := NewRef[int](nil)
	if got, ok := r.Lookup(context.Background()); got != nil || ok {
		t.Errorf("Lookup = %p, %v; want <nil>, false", got, ok)
	}
}
