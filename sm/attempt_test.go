package sm

import (
	"testing"
	"testing/synctest"
	"time"
)

// Attempts that share the clock's contexts each get at least the
// timeout and at most a quarter more, and attempts begun together share
// one context.
func TestAttemptClockBoundsEveryAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 4 * time.Second
		var a attemptClock
		renewals := 0
		last := a.context(timeout)
		for step := range 40 {
			start := time.Now()
			ctx := a.context(timeout)
			if again := a.context(timeout); again != ctx {
				t.Fatalf("step %d: two attempts begun together got two contexts", step)
			}
			if ctx != last {
				renewals++
				last = ctx
			}
			d, ok := ctx.Deadline()
			if !ok || d.Sub(start) < timeout || d.Sub(start) > timeout+timeout/4 {
				t.Fatalf("step %d: an attempt begun at %v ends at %v, want between %v and %v later",
					step, start, d, timeout, timeout+timeout/4)
			}
			if step == 5 {
				<-ctx.Done() // the context ends at its deadline, not before
				if waited := time.Since(start); waited < timeout {
					t.Fatalf("the attempt's context ended after %v, before its timeout %v", waited, timeout)
				}
				continue
			}
			time.Sleep(timeout / 10)
		}
		if renewals < 6 {
			t.Errorf("%d renewals over %v: the clock hands one context out for longer than a quarter timeout", renewals, 40*timeout/10)
		}
	})
}
