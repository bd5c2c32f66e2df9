package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// This file holds configuration changes (thesis 4.1 and 4.4): one server
// added as a learner, promoted to voter or removed at a time, through
// EntryConfig entries that take effect as soon as they are appended.

var (
	// ErrConfChangeInProgress is returned by ProposeConfChange while an
	// earlier change is not committed yet, or while a new leader has not
	// committed an entry of its term (its log may hold an uncommitted
	// change of an earlier leader). Retry later.
	ErrConfChangeInProgress = errors.New("raft: configuration change in progress")
	// ErrInvalidConfChange is returned by ProposeConfChange for a change
	// that does not fit the configuration: adding a member, promoting a
	// node that is no learner, removing a non-member or the last voter.
	ErrInvalidConfChange = errors.New("raft: invalid configuration change")
	// ErrQuorumAtRisk is returned by ProposeConfChange for a change after
	// which the voters the leader currently hears from would not make a
	// quorum.
	ErrQuorumAtRisk = errors.New("raft: configuration change would leave no responsive quorum")
)

// ConfChangeType is what a ConfChange does. The numeric values are part
// of the log's format: new types are appended, never inserted.
type ConfChangeType uint8

const (
	// ConfAddLearner adds a non-voting member, which receives entries but
	// neither votes nor counts towards any quorum.
	ConfAddLearner ConfChangeType = iota + 1
	// ConfPromoteLearner makes a learner a voter.
	ConfPromoteLearner
	// ConfRemoveMember removes a learner or a voter.
	ConfRemoveMember
	confChangeTypeEnd // one past the last valid type
)

// String names the change type for logs and test failures.
func (t ConfChangeType) String() string {
	switch t {
	case ConfAddLearner:
		return "add-learner"
	case ConfPromoteLearner:
		return "promote-learner"
	case ConfRemoveMember:
		return "remove-member"
	}
	return fmt.Sprintf("ConfChangeType(%d)", uint8(t))
}

// ConfChange is a single-server configuration change, carried in the Data
// of an EntryConfig entry.
type ConfChange struct {
	Type   ConfChangeType
	NodeID uint64
	// Addr is the node's transport address, opaque to raft; it rides in
	// the log so that every member learns it (for ConfAddLearner).
	Addr string
}

// AppendBinary appends the encoding of cc to b: the type byte, NodeID as
// an unsigned varint, then Addr with an unsigned varint length.
func (cc *ConfChange) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(cc.Type))
	b = binary.AppendUvarint(b, cc.NodeID)
	b = binary.AppendUvarint(b, uint64(len(cc.Addr)))
	return append(b, cc.Addr...), nil
}

// UnmarshalBinary decodes a change that fills b exactly. It returns an
// error wrapping ErrCorrupt for an unknown type, node id 0, or a
// truncated or overlong input.
func (cc *ConfChange) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	cc.Type = ConfChangeType(d.byte())
	cc.NodeID = d.uvarint()
	cc.Addr = string(d.bytes())
	switch {
	case d.err != nil:
	case d.off != len(b):
		d.err = fmt.Errorf("%d trailing bytes", len(b)-d.off)
	case cc.Type == 0 || cc.Type >= confChangeTypeEnd:
		d.err = fmt.Errorf("type %d", cc.Type)
	case cc.NodeID == 0:
		d.err = errors.New("node id 0")
	}
	if d.err != nil {
		return fmt.Errorf("%w: conf change: %v", ErrCorrupt, d.err)
	}
	return nil
}

// configuration is a configuration: sorted voters and learners, disjoint,
// and the transport addresses that ConfAddLearner entries and snapshots
// carried, by member. The addrs map is shared between configuration
// points and never written once made.
type configuration struct {
	voters, learners []uint64
	addrs            map[uint64]string
}

func newConfiguration(voters, learners []uint64, addrs map[uint64]string) configuration {
	return configuration{voters: slices.Sorted(slices.Values(voters)), learners: slices.Sorted(slices.Values(learners)),
		addrs: maps.Clone(addrs)}
}

func (ms configuration) isVoter(id uint64) bool   { return slices.Contains(ms.voters, id) }
func (ms configuration) isLearner(id uint64) bool { return slices.Contains(ms.learners, id) }
func (ms configuration) isMember(id uint64) bool  { return ms.isVoter(id) || ms.isLearner(id) }

// apply returns the configuration after cc, or an error wrapping
// ErrInvalidConfChange if cc does not fit this one.
func (ms configuration) apply(cc ConfChange) (configuration, error) {
	id := cc.NodeID
	var bad bool
	next := configuration{voters: slices.Clone(ms.voters), learners: slices.Clone(ms.learners), addrs: ms.addrs}
	switch cc.Type {
	case ConfAddLearner:
		bad = id == 0 || ms.isMember(id)
		next.learners = append(next.learners, id)
		if cc.Addr != "" {
			next.addrs = maps.Clone(ms.addrs)
			if next.addrs == nil {
				next.addrs = make(map[uint64]string, 1)
			}
			next.addrs[id] = cc.Addr
		}
	case ConfPromoteLearner:
		bad = !ms.isLearner(id)
		next.learners = slices.DeleteFunc(next.learners, func(x uint64) bool { return x == id })
		next.voters = append(next.voters, id)
	case ConfRemoveMember:
		bad = !ms.isMember(id) || ms.isVoter(id) && len(ms.voters) == 1
		next.learners = slices.DeleteFunc(next.learners, func(x uint64) bool { return x == id })
		next.voters = slices.DeleteFunc(next.voters, func(x uint64) bool { return x == id })
		if _, ok := ms.addrs[id]; ok {
			next.addrs = maps.Clone(ms.addrs)
			delete(next.addrs, id)
		}
	default:
		bad = true
	}
	if bad {
		return ms, fmt.Errorf("%w: %v of %d in voters %v, learners %v", ErrInvalidConfChange, cc.Type, id, ms.voters, ms.learners)
	}
	slices.Sort(next.voters)
	slices.Sort(next.learners)
	return next, nil
}

// confPoint is the configuration from the entry at index (of term) on.
// The first point of a Core is its base: the snapshot's or the initial
// configuration.
type confPoint struct {
	index, term uint64
	ms          configuration
}

// ProposeConfChange appends a configuration change to the leader's log and
// returns its index and term; the outcome shows in Ready.Committed as for
// Propose. The change takes effect on every node as soon as the entry is
// appended to its log, and is undone if the entry is cut off.
//
// It returns ErrNotLeader on a non-leader, ErrTransferring during a
// leadership transfer, ErrConfChangeInProgress while another change is
// uncommitted or before the leader committed an entry of its term,
// ErrInvalidConfChange for a change that does not fit, and
// ErrQuorumAtRisk if the voters after the change that the leader heard
// from within an election timeout would not make a quorum of them.
func (c *Core) ProposeConfChange(cc ConfChange) (index, term uint64, err error) {
	switch {
	case c.role != RoleLeader:
		return 0, 0, ErrNotLeader
	case c.transferee != 0:
		return 0, 0, ErrTransferring
	case c.lastConf().index > c.log.committed || !c.committedInTerm():
		return 0, 0, ErrConfChangeInProgress
	}
	next, err := c.conf().apply(cc)
	if err != nil {
		return 0, 0, err
	}
	if !c.responsiveQuorum(next.voters) {
		return 0, 0, fmt.Errorf("%w: %v of %d", ErrQuorumAtRisk, cc.Type, cc.NodeID)
	}
	data, _ := cc.AppendBinary(nil)
	e := Entry{Index: c.log.lastIndex() + 1, Term: c.term, Type: EntryConfig, Data: data}
	c.log.append(e)
	c.addConf(e.Index, e.Term, next)
	return e.Index, e.Term, nil
}

// Configuration returns the current configuration: the voters and learners
// after the last configuration entry in the log, committed or not.
func (c *Core) Configuration() (voters, learners []uint64) {
	ms := c.conf()
	return slices.Clone(ms.voters), slices.Clone(ms.learners)
}

// ConfigurationAt returns the configuration in effect at log index i.
func (c *Core) ConfigurationAt(i uint64) (voters, learners []uint64) {
	ms := c.confAt(i)
	return slices.Clone(ms.voters), slices.Clone(ms.learners)
}

// responsiveQuorum reports whether a quorum of voters answered the leader
// within the last election timeout; the leader counts for itself.
func (c *Core) responsiveQuorum(voters []uint64) bool {
	active := 0
	for _, id := range voters {
		pr := c.progress[id]
		if id == c.id || pr != nil && c.ticks-pr.heardAt < uint64(c.cfg.ElectionTicks) {
			active++
		}
	}
	return len(voters) > 0 && active >= len(voters)/2+1
}

func (c *Core) conf() configuration  { return c.lastConf().ms }
func (c *Core) lastConf() *confPoint { return &c.confs[len(c.confs)-1] }

// confAt is the configuration in effect at index i.
func (c *Core) confAt(i uint64) configuration {
	for k := len(c.confs) - 1; k > 0; k-- {
		if c.confs[k].index <= i {
			return c.confs[k].ms
		}
	}
	return c.confs[0].ms
}

// isVoter and isMember ask the current configuration.
func (c *Core) isVoter(id uint64) bool  { return c.conf().isVoter(id) }
func (c *Core) isMember(id uint64) bool { return c.conf().isMember(id) }

// resetConf makes base, at index, the only configuration point and adds
// the configuration entries of the log after it.
func (c *Core) resetConf(index, term uint64, base configuration) {
	c.confs = []confPoint{{index: index, term: term, ms: base}}
	if index < c.log.lastIndex() {
		c.appendedConf(c.log.slice(max(index, c.log.offset)+1, c.log.lastIndex()+1))
	}
	c.setConf()
}

// installConf makes the configuration of an installed snapshot the base,
// followed by the configuration entries of the log kept after it. A
// snapshot without one keeps the configuration in effect at its index.
func (c *Core) installConf(m SnapshotMeta) {
	base := c.confAt(m.Index)
	if len(m.Voters) > 0 {
		base = newConfiguration(m.Voters, m.Learners, m.Addrs)
	}
	c.resetConf(m.Index, m.Term, base)
}

// addConf records that the configuration entry at index made ms current.
func (c *Core) addConf(index, term uint64, ms configuration) {
	c.confs = append(c.confs, confPoint{index: index, term: term, ms: ms})
	c.setConf()
}

// appendedConf brings the configuration up to date after ents were
// appended to the log, possibly replacing a suffix: points whose entry
// the log no longer holds are undone, and the configuration entries
// among ents take effect. Whether a point's entry is still there is
// asked of the log, not of the commit index: the MsgApp that replaced
// the entry may have raised the commit index past it in the same step.
// Only points compacted into the snapshot are beyond asking, and those
// were committed. A change that does not fit (an entry no
// leader would have written) is ignored alike on every node.
func (c *Core) appendedConf(ents []Entry) {
	k := len(c.confs)
	for k > 1 && c.confs[k-1].index > c.log.offset && !c.log.matchTerm(c.confs[k-1].index, c.confs[k-1].term) {
		k--
	}
	changed := k != len(c.confs)
	c.confs = c.confs[:k]
	for _, e := range ents {
		if e.Type != EntryConfig || e.Index <= c.lastConf().index || !c.log.matchTerm(e.Index, e.Term) {
			continue
		}
		var cc ConfChange
		if cc.UnmarshalBinary(e.Data) != nil {
			continue
		}
		if next, err := c.conf().apply(cc); err == nil {
			c.confs = append(c.confs, confPoint{index: e.Index, term: e.Term, ms: next})
			changed = true
		}
	}
	if changed {
		c.setConf()
	}
}

// setConf makes the last configuration point current: a leader starts or
// stops replicating to the members added or removed.
func (c *Core) setConf() {
	ms := c.conf()
	c.voters = ms.voters
	if c.role != RoleLeader {
		return
	}
	for id := range c.progress {
		if !ms.isMember(id) {
			delete(c.progress, id)
		}
	}
	c.members(func(id uint64) {
		if c.progress[id] == nil {
			c.progress[id] = newProgress(c.log.lastIndex()+1, c.ticks)
		}
	})
	if c.transferee != 0 && !ms.isVoter(c.transferee) {
		c.transferee, c.transferElapsed = 0, 0
	}
}

// compactConf forgets the configuration points before the one in effect
// at index, which a snapshot there now carries.
func (c *Core) compactConf(index uint64) {
	k := 0
	for k+1 < len(c.confs) && c.confs[k+1].index <= index {
		k++
	}
	c.confs = slices.Delete(c.confs, 0, k)
}

// members calls f for every voter and learner but this node, in id order.
func (c *Core) members(f func(id uint64)) {
	ms := c.conf()
	for _, ids := range [2][]uint64{ms.voters, ms.learners} {
		for _, id := range ids {
			if id != c.id {
				f(id)
			}
		}
	}
}

// maybePromote proposes promoting a learner whose log is within
// PromoteLag entries of the leader's.
func (c *Core) maybePromote(id uint64, pr *progress) {
	if c.cfg.PromoteLag < 0 || !c.conf().isLearner(id) || pr.match+uint64(c.cfg.PromoteLag) < c.log.lastIndex() {
		return
	}
	c.ProposeConfChange(ConfChange{Type: ConfPromoteLearner, NodeID: id}) // refused now, tried on the next answer
}

// maybeStepDownRemoved ends the leadership of a leader whose removal has
// committed: it tells the most up-to-date voter to campaign at once, if
// one holds the whole log, and steps down. Out of the configuration, it
// never campaigns again.
func (c *Core) maybeStepDownRemoved() {
	if c.role != RoleLeader || c.isVoter(c.id) || c.lastConf().index > c.log.committed {
		return
	}
	if to := c.mostUpToDate(); to != 0 && c.progress[to].match == c.log.lastIndex() {
		c.send(Message{Type: MsgTimeoutNow, To: to, Term: c.term})
	}
	c.becomeFollower(c.term, 0)
}

// promotable reports whether this node may campaign. A voter may; so may
// a node whose removal is the last configuration entry of its log while
// that entry is not known committed (thesis 4.2.2). Such a node may hold
// the only complete log among the voters, and until the removal commits
// the group may need it to lead: as leader it counts a quorum of the
// remaining voters without itself, commits its removal and hands over
// (maybeStepDownRemoved).
func (c *Core) promotable() bool {
	return c.isVoter(c.id) || c.lastConf().index > c.log.committed && c.confAt(c.log.committed).isVoter(c.id)
}

// selfVote is 1 if this node is a voter: what it adds to a quorum count.
func (c *Core) selfVote() int {
	if c.isVoter(c.id) {
		return 1
	}
	return 0
}
