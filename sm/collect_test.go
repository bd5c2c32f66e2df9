package sm

import "testing"

// A replica that has not applied a subscription's registration yet (a
// new leader still applying its predecessor's log) makes its subscriber
// wait; one that has applied past it and holds none says it is gone.
func TestCollectWaitsForARegistrationNotAppliedYet(t *testing.T) {
	s := newSubscriptions(windowLimit{events: 16, bytes: DefaultRetainBytes})
	subs := []pollSub{{id: 10}}
	if res, found := s.collect(subs, 8, 9); found || res[0].status != stOK {
		t.Errorf("registration at 10, applied 9: %+v found=%v, want to wait", res, found)
	}
	if res, found := s.collect(subs, 8, 10); !found || res[0].status != stNoSubscription {
		t.Errorf("registration at 10, applied 10, none held: %+v found=%v, want gone", res, found)
	}
}
