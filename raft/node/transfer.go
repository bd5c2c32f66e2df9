package node

import (
	"context"
	"errors"

	"github.com/bifrost-go/bifrost/raft"
)

// ErrTransferFailed reports a leadership transfer that did not finish: the
// leader abandoned it after an election timeout (the target did not catch
// up or did not win), or another node won the election.
var ErrTransferFailed = errors.New("node: leadership transfer failed")

// TransferLeadership hands this leader's leadership to node to, or to the
// most up-to-date follower when to is 0, and waits until the target
// leads. Proposals on this node fail with raft.ErrTransferring meanwhile.
// It fails with raft.ErrNotLeader on a node that does not lead, and with
// ErrTransferFailed once the leader gives up, after an election timeout.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	var err error
	var st raft.Status
	if derr := n.do(ctx, func() {
		err = n.core.TransferLeadership(to)
		st = n.core.Status()
		n.publishStatus() // before WaitFor looks at it
	}); derr != nil {
		return derr
	}
	if err != nil || st.Transferee == 0 {
		return err // nil: to is this node, which already leads
	}
	target, term := st.Transferee, st.Term
	var outcome error
	werr := n.WaitFor(ctx, func(st Status) bool {
		switch {
		case st.Term > term && st.Lead == target:
			return true
		case st.Term > term && st.Lead != 0,
			st.Term == term && st.Role == raft.RoleLeader && st.Transferee != target:
			outcome = ErrTransferFailed
			return true
		}
		return false
	})
	if werr != nil {
		return werr
	}
	return outcome
}
