package bifrost

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
)

// statusService is the rpc service through which a node answers for its
// own raft status: a node knows its peers' rpc addresses but not their
// HTTP ones, so the node serving the page asks every member over rpc. A
// dash, not a dot, keeps it apart from the "bifrost." + group services,
// whatever a group is called.
const statusService = "bifrost-status"

var raftStatusMethod = rpc.NewMethod[struct{}, []byte](statusService, "raft")

// peerStatusTimeout bounds the call to one member: the page polls about
// once a second, and a member that cannot answer in that time is shown
// as unreachable rather than holding the whole answer back.
const peerStatusTimeout = time.Second

// memberStatus is one raft member's status as /v1/cluster shows it. A
// member that did not answer has Reachable false, Error saying why, and
// only its id, address and voter flag set.
type memberStatus struct {
	ID        uint64 `json:"id"`
	Addr      string `json:"addr"`
	Voter     bool   `json:"voter"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	State     string `json:"state,omitempty"` // leader, follower, candidate or learner
	Term      uint64 `json:"term"`
	Leader    uint64 `json:"leader"`
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	LastIndex uint64 `json:"last_index"`
}

// serveRaftStatus adds the service that answers for n's raft status to
// n's rpc server. Every HTTP API of n would add the same, so a second
// one finds the first already there and keeps it.
func serveRaftStatus(n *Node) error {
	svc := rpc.NewService(statusService)
	if _, err := rpc.Register(svc, "raft", func(ctx context.Context, _ struct{}) ([]byte, error) {
		return json.Marshal(n.localStatus(ctx))
	}); err != nil {
		return err
	}
	if err := n.RPC().AddService(svc); err != nil && !errors.Is(err, rpc.ErrDuplicate) {
		return err
	}
	return nil
}

// localStatus returns n's own status.
func (n *Node) localStatus(ctx context.Context) memberStatus {
	st := n.Raft().Status()
	s := memberStatus{ID: n.cfg.ID, Addr: n.Addr(), Voter: true, Reachable: true,
		State: cmp.Or(roles[st.Role], "follower"), Term: st.Term, Leader: st.Lead,
		Commit: st.Commit, Applied: st.Applied, LastIndex: st.LastIndex}
	if _, learners, err := n.Raft().Configuration(ctx); err == nil && slices.Contains(learners, n.cfg.ID) {
		s.State, s.Voter = "learner", false
	}
	return s
}

// configuration returns the ids of the group's voters and learners as n
// knows them, or the voters it started with if it cannot say.
func (n *Node) configuration(ctx context.Context) (voters, learners []uint64) {
	voters, learners, err := n.Raft().Configuration(ctx)
	if err != nil {
		return slices.Sorted(maps.Keys(n.cfg.Peers)), nil
	}
	return voters, learners
}

// peerStatus asks member id, at addr, for its status.
func (n *Node) peerStatus(ctx context.Context, id uint64, addr string) memberStatus {
	down := func(err error) memberStatus {
		return memberStatus{ID: id, Addr: addr, Error: err.Error()}
	}
	if addr == "" {
		return down(errors.New("no address known"))
	}
	ctx, cancel := context.WithTimeout(ctx, peerStatusTimeout)
	defer cancel()
	c, err := n.pool.Client(ctx, addr)
	if err != nil {
		return down(err)
	}
	p, err := raftStatusMethod.Call(ctx, c, struct{}{})
	if errors.Is(err, rpc.ErrServiceNotFound) {
		return down(errors.New("runs no HTTP API, so no status service"))
	}
	if err != nil {
		return down(err)
	}
	var s memberStatus
	if err := json.Unmarshal(p, &s); err != nil {
		return down(err)
	}
	s.Addr = addr // as this node reaches it
	return s
}

// clusterStatus returns every member's status, in id order, asking the
// others at once.
func (n *Node) clusterStatus(ctx context.Context) []memberStatus {
	voters, learners := n.configuration(ctx)
	ids := slices.Sorted(slices.Values(slices.Concat(voters, learners)))
	out := make([]memberStatus, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		if id == n.cfg.ID {
			out[i] = n.localStatus(ctx)
			continue
		}
		addr, _ := n.transport.Addr(id)
		wg.Go(func() { out[i] = n.peerStatus(ctx, id, addr) })
	}
	wg.Wait()
	for i := range out {
		out[i].Voter = slices.Contains(voters, out[i].ID)
	}
	return out
}

// cluster answers GET /v1/cluster: the raft group as this node sees it,
// with every member's own status.
func (h *HTTP) cluster(w http.ResponseWriter, r *http.Request) {
	st := h.node.Raft().Status()
	reply(w, map[string]any{"group": h.node.Group(), "self": h.node.cfg.ID, "term": st.Term,
		"leader": st.Lead, "members": h.node.clusterStatus(r.Context())})
}
