package server

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cairn-db/cairn/internal/command"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// The space quota, as etcd's: when the data would grow past QuotaBytes
// (mvcc.Store.Size, the in-memory estimate), the member that received the
// write raises the NOSPACE alarm through the log and refuses the write.
// While NOSPACE is raised (replicated, so every member alike), every write
// that adds data (a put, a txn with a put, a lease grant, a sequential
// create) is refused in apply; reads, deletes, compaction and lease revokes
// go on, so an operator can make room and then disarm the alarm
// (etcdctl alarm disarm).

// ErrNoSpace is etcd's error for a write refused by the quota.
var ErrNoSpace = errors.New("etcdserver: mvcc: database space exceeded")

// DefaultQuotaBytes is the quota when none is set (etcd's default).
const DefaultQuotaBytes = 2 << 30

const alarmNoSpace = "NOSPACE"

// nospaceLocked reports whether NOSPACE is raised.
func (s *Server) nospaceLocked() bool {
	for _, a := range s.repAlarms {
		if a.Type == alarmNoSpace {
			return true
		}
	}
	return false
}

// growsData reports whether cmd may add data (what NOSPACE refuses).
func growsData(cmd *command.Command) bool {
	switch cmd.Kind {
	case command.KindLeaseGrant, command.KindCreateSequential:
		return true
	case command.KindTxn, command.KindGuardedTxn:
		return cmd.Txn != nil && txnPuts(cmd.Txn)
	}
	return false
}

func txnPuts(t *mvcc.TxnRequest) bool {
	for _, ops := range [][]mvcc.Op{t.Success, t.Failure} {
		for _, op := range ops {
			if op.Put != nil || (op.Txn != nil && txnPuts(op.Txn)) {
				return true
			}
		}
	}
	return false
}

// checkQuota runs before proposing cmd: it raises NOSPACE (through the log)
// and refuses the write when the write would take the data past the quota.
// While NOSPACE is raised the write is proposed and apply refuses it.
func (s *Server) checkQuota(ctx context.Context, cmd *command.Command, size int) error {
	if !growsData(cmd) {
		return nil
	}
	s.mu.RLock()
	raised, dataSize := s.nospaceLocked(), s.store.Size()
	s.mu.RUnlock()
	if raised {
		// Apply refuses it while NOSPACE is raised. This member's view may
		// lag a disarm that is already committed: let the log decide.
		return nil
	}
	if dataSize+int64(size) <= s.cfg.QuotaBytes {
		return nil
	}
	s.log.Warn("space quota exceeded; raising NOSPACE", "data_bytes", dataSize, "quota_bytes", s.cfg.QuotaBytes)
	if _, err := s.propose(ctx, &command.Command{Kind: command.KindAlarm,
		Alarm: &command.AlarmOp{Activate: true, MemberID: s.cfg.MemberID, Type: alarmNoSpace}}); err != nil {
		return err
	}
	return ErrNoSpace
}

// SetAlarm raises or clears a replicated alarm (Maintenance.Alarm).
func (s *Server) SetAlarm(ctx context.Context, activate bool, memberID uint64, typ string) error {
	_, err := s.propose(ctx, &command.Command{Kind: command.KindAlarm,
		Alarm: &command.AlarmOp{Activate: activate, MemberID: memberID, Type: typ}})
	return err
}

// applyAlarmLocked applies an alarm change.
func (s *Server) applyAlarmLocked(a *command.AlarmOp) {
	if a == nil {
		return
	}
	al := Alarm{MemberID: a.MemberID, Type: a.Type}
	kept := s.repAlarms[:0:0]
	found := false
	for _, x := range s.repAlarms {
		switch {
		case x == al && a.Activate:
			found = true
			kept = append(kept, x)
		case x == al: // deactivate
		case !a.Activate && a.MemberID == 0 && x.Type == a.Type: // deactivate for every member
		default:
			kept = append(kept, x)
		}
	}
	if a.Activate && !found {
		kept = append(kept, al)
		s.log.Warn("alarm raised", "alarm", a.Type, "member", a.MemberID)
	} else if !a.Activate {
		s.log.Info("alarm cleared", "alarm", a.Type, "member", a.MemberID)
	}
	s.repAlarms = kept
}

func (s *Server) marshalAlarmsLocked() []byte {
	if len(s.repAlarms) == 0 {
		return nil
	}
	b, _ := json.Marshal(s.repAlarms)
	return b
}
