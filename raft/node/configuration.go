package node

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// This file holds configuration changes: adding a learner, promoting it,
// removing a member, and the Join and Leave helpers of a node starting up
// or shutting down, as in the seed's bifrost.

// PeerDirectory is an optional Transport capability: learning the address
// of a member added to the group and forgetting a removed one. The driver
// calls it from its goroutine when a configuration entry carrying an
// address is appended or applied, so every member learns a new node's
// address from the log.
type PeerDirectory interface {
	AddPeer(id uint64, addr string)
	RemovePeer(id uint64)
}

// ConfChangeRequester is an optional Transport capability that Join and
// Leave need: asking another member to propose a configuration change.
type ConfChangeRequester interface {
	// HandleConfChange sets the function that answers other members'
	// requests. Start calls it once.
	HandleConfChange(h func(ctx context.Context, cc raft.ConfChange) error)
	// RequestConfChange asks node to propose cc and waits for its answer.
	RequestConfChange(ctx context.Context, to uint64, cc raft.ConfChange) error
}

// ErrNoRequester reports a Join or Leave on a node whose transport cannot
// ask other members for a change (it is no ConfChangeRequester).
var ErrNoRequester = errors.New("node: transport cannot request configuration changes")

// AddLearner adds node id as a learner and waits until the change is
// applied on this node, which must lead. addr, if not empty, is the node's
// transport address: it rides in the log so that every member's transport
// learns it (PeerDirectory). The leader promotes the learner once it has
// caught up (Config.PromoteLag). Core errors such as
// raft.ErrConfChangeInProgress pass through.
func (n *Node) AddLearner(ctx context.Context, id uint64, addr string) error {
	return n.changeConf(ctx, raft.ConfChange{Type: raft.ConfAddLearner, NodeID: id, Addr: addr})
}

// PromoteLearner makes learner id a voter and waits until the change is
// applied on this node, which must lead.
func (n *Node) PromoteLearner(ctx context.Context, id uint64) error {
	return n.changeConf(ctx, raft.ConfChange{Type: raft.ConfPromoteLearner, NodeID: id})
}

// RemoveMember removes node id, a learner or a voter, and waits until the
// change is applied on this node, which must lead. A leader that removes
// itself leads until the change commits, then steps down.
//
// Do not start a removed member again on its old storage: if its log
// predates the removal it still counts itself a voter, receives nothing
// (the group no longer replicates to it) and campaigns in vain; pre-vote
// and the members' lease on their leader keep it from disrupting them,
// but it is never useful. Wipe its data and Join it as a new member.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	return n.changeConf(ctx, raft.ConfChange{Type: raft.ConfRemoveMember, NodeID: id})
}

// Configuration returns the group's current voters and learners as this node
// knows them.
func (n *Node) Configuration(ctx context.Context) (voters, learners []uint64, err error) {
	err = n.do(ctx, func() { voters, learners = n.core.Configuration() })
	return voters, learners, err
}

// changeConf proposes cc and waits until it is applied here. Its errors
// say whether the change may still happen, as Propose's do.
func (n *Node) changeConf(ctx context.Context, cc raft.ConfChange) error {
	_, err := n.submit(ctx, &proposal{conf: &cc, done: make(chan result, 1)})
	return err
}

// Join asks the group to add this node, started as a learner (Config
// Voters are the group's voters and Learners holds this node), with its
// transport address addr. It asks the leader it knows, or each voter in
// turn, once per election timeout, until one adds it or ctx ends. Once
// added, the leader promotes it when it has caught up; wait for that with
// WaitFor or Configuration if it matters.
func (n *Node) Join(ctx context.Context, addr string) error {
	return n.request(ctx, raft.ConfChange{Type: raft.ConfAddLearner, NodeID: n.cfg.Raft.ID, Addr: addr})
}

// Leave asks the group to remove this node, before it shuts down. A
// leader first hands its leadership to the most up-to-date follower, so
// the group does not wait for an election timeout, and then asks the new
// leader; if the handover fails it removes itself, stepping down once the
// removal commits.
func (n *Node) Leave(ctx context.Context) error {
	if n.Status().Role == raft.RoleLeader {
		if err := n.TransferLeadership(ctx, 0); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return n.RemoveMember(ctx, n.cfg.Raft.ID)
		}
	}
	return n.request(ctx, raft.ConfChange{Type: raft.ConfRemoveMember, NodeID: n.cfg.Raft.ID})
}

// request asks the other members to propose cc until one does.
func (n *Node) request(ctx context.Context, cc raft.ConfChange) error {
	req, ok := n.cfg.Transport.(ConfChangeRequester)
	if !ok {
		return ErrNoRequester
	}
	ticks := n.cfg.Raft.ElectionTicks
	if ticks == 0 {
		ticks = raft.DefaultElectionTicks
	}
	retry := time.NewTicker(time.Duration(ticks) * n.cfg.TickInterval)
	defer retry.Stop()
	for {
		for _, to := range n.askOrder() {
			err := req.RequestConfChange(ctx, to, cc)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			n.log.Debug("raft conf change request", "to", to, "change", cc.Type, "err", err)
		}
		select {
		case <-retry.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return ErrStopped
		}
	}
}

// askOrder is whom request asks: the known leader first, then the voters.
func (n *Node) askOrder() []uint64 {
	var order []uint64
	if lead := n.Status().Lead; lead != 0 && lead != n.cfg.Raft.ID {
		order = append(order, lead)
	}
	voters, _, err := n.Configuration(context.Background())
	if err != nil {
		voters = n.cfg.Raft.Voters
	}
	for _, id := range voters {
		if id != n.cfg.Raft.ID && !slices.Contains(order, id) {
			order = append(order, id)
		}
	}
	return order
}

// answerConfChange proposes a change another member asked for; only the
// leader can. Adding a member or removing a non-member succeeds at once,
// so a request retried after its answer was lost is not refused.
func (n *Node) answerConfChange(ctx context.Context, cc raft.ConfChange) error {
	if n.Status().Role != raft.RoleLeader {
		return raft.ErrNotLeader
	}
	voters, learners, err := n.Configuration(ctx)
	if err != nil {
		return err
	}
	member := slices.Contains(voters, cc.NodeID) || slices.Contains(learners, cc.NodeID)
	if cc.Type == raft.ConfAddLearner && member || cc.Type == raft.ConfRemoveMember && !member {
		return nil
	}
	return n.changeConf(ctx, cc)
}

// learnSnapshotPeers tells the transport the member addresses a snapshot
// carries (raft.SnapshotMeta.Addrs): the log entries that brought them
// are gone, and a member added before the snapshot is reachable only so.
func (n *Node) learnSnapshotPeers(meta raft.SnapshotMeta) {
	dir, ok := n.cfg.Transport.(PeerDirectory)
	if !ok {
		return
	}
	for id, addr := range meta.Addrs {
		if id != n.cfg.Raft.ID && addr != "" {
			dir.AddPeer(id, addr)
		}
	}
}

// learnPeers tells the transport about the members that configuration
// entries add (appended) or remove (applied).
func (n *Node) learnPeers(ents []raft.Entry, applied bool) {
	dir, ok := n.cfg.Transport.(PeerDirectory)
	if !ok {
		return
	}
	for _, e := range ents {
		if e.Type != raft.EntryConfig {
			continue
		}
		var cc raft.ConfChange
		if err := cc.UnmarshalBinary(e.Data); err != nil {
			n.log.Warn("raft: undecodable configuration entry", "index", e.Index, "err", err)
			continue
		}
		switch {
		case cc.Type == raft.ConfAddLearner && cc.Addr != "" && cc.NodeID != n.cfg.Raft.ID:
			dir.AddPeer(cc.NodeID, cc.Addr)
		case cc.Type == raft.ConfRemoveMember && applied && cc.NodeID != n.cfg.Raft.ID:
			dir.RemovePeer(cc.NodeID)
		}
	}
}
