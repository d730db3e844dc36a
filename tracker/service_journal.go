package tracker

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/tidstorage/tidstorage/tracker/input"
	"github.com/tidstorage/tidstorage/tracker/journal"
)

// The Service's journal (docs/admin.md, "Crash recovery"): every input is
// encoded and appended before the Machine applies it, under the lock, so
// that when Observe returns — and the relay forwards the frame — the input
// is in the page cache and survives a crash of the process (docs/design.md,
// rule 1, extended to durability). After an unclean stop the journal is
// replayed through a fresh Machine, which then holds exactly the dead
// process's state; Recover and the storages' history do the rest.
//
// The journal restarts from an image of the whole Machine (image.go) at the
// first Tick after it grew past RotateSize, busy or not, so its size stays
// bounded under constant load and while a pin is held. A journal that
// cannot be written (a full or read-only disk, at start or on an append)
// stops journaling — a journal with a hole would replay a different state —
// and holds publication: the point answered and written stays where it was,
// so that no published TID can go back after a crash meanwhile. The relay is
// not held up. A rotation is tried at every Tick and, once it succeeds, the
// journal is whole again (the image holds everything) and publication
// resumes. The rotation that frees a full disk's space uses a reserve file
// kept beside the journal (journal.Options.Reserve).

// DefaultJournalRotate is the size past which the journal restarts from an
// image at the next Tick.
const DefaultJournalRotate = 64 << 20

// DefaultJournalReserve is the size of the reserve file kept beside the
// journal for the rotation that frees a full disk.
const DefaultJournalReserve = 4 << 20

// JournalStats describes the journal, for /status and metrics.
type JournalStats struct {
	Path      string
	Size      int64
	Records   uint64 // appended since start
	Rotations uint64
	Errors    uint64
	// Broken says why appending stopped ("" while it works).
	Broken string
	// Replayed counts the inputs replayed at start; Damage describes a
	// tail cut at open, or appends that had stopped before the previous
	// run ended ("" if none).
	Replayed int
	Damage   string
	// Reserve says why the reserve file is missing ("" when it is there).
	Reserve string
	// LastRotation is how long the last rotation held the tracker's lock.
	LastRotation time.Duration
}

// JournalOptions configure OpenJournal.
type JournalOptions struct {
	journal.Options
	// Replay: the previous run stopped uncleanly, replay what it journaled.
	// Otherwise the journal restarts empty (a clean start re-reads every
	// storage, which accounts for everything before it).
	Replay bool
	// RotateSize (default DefaultJournalRotate).
	RotateSize int64
}

// OpenJournal opens the journal at path before any input; with Replay it
// replays it first. A torn or corrupt tail, or a record that does not
// decode, is cut and reported in the stats (never fatal). A journal that
// cannot be written is not fatal either: journaling stops and publication
// is held until a rotation succeeds (Broken). The error is for a file that
// is not a journal, or one that cannot be read.
func (s *Service) OpenJournal(path string, opts JournalOptions) (JournalStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jr := &s.jr
	jr.rotate = opts.RotateSize
	if jr.rotate <= 0 {
		jr.rotate = DefaultJournalRotate
	}
	jr.stats = JournalStats{Path: path}
	jopts := opts.Options
	jopts.Degraded = true
	if jopts.Reserve == 0 {
		jopts.Reserve = DefaultJournalReserve
	}
	var undecodable error
	j, dmg, err := journal.Open(path, jopts, func(rec []byte) error {
		if !opts.Replay {
			return nil
		}
		now, in, err := input.Decode(rec)
		if err == nil {
			err = s.m.Apply(now, in)
			if _, image := in.(input.Image); !image {
				err = nil // an accept of a pin that is gone fails as it did
			} // an image that does not restore changes nothing: the tail is cut
		}
		if err != nil {
			undecodable = err
			return fmt.Errorf("%w: %w", journal.ErrCut, err)
		}
		s.m.ClearRecords()
		jr.stats.Replayed++
		return nil
	})
	if err != nil {
		return jr.stats, err
	}
	jr.j = j
	now := s.clock().UnixNano()
	if dmg != nil {
		jr.stats.Damage = fmt.Sprintf("%d bytes cut at offset %d: %s", dmg.Cut, dmg.Offset, dmg.Reason)
		if undecodable != nil {
			jr.stats.Damage += ": " + undecodable.Error()
		}
		jr.damaged = opts.Replay
	}
	if werr := j.WriteErr(); werr != nil {
		s.journalBroken(now, werr, "journal "+path+": it cannot be written at start")
	} else if !opts.Replay || jr.stats.Replayed == 0 {
		if err := s.rotateLocked(now); err != nil {
			s.journalBroken(now, err, "journal "+path+": it cannot be written at start")
		}
	}
	if jr.stats.Replayed > 0 {
		s.afterReplay()
	}
	jr.stats.Size = j.Size()
	return jr.stats, nil
}

// afterReplay makes the Service's outputs match the replayed Machine: the
// last good point, and the status file's staged values (s.mu held).
//
// Nothing is published until Recover (or, on a fleet tracker, Floor or
// Bootstrap) has run: the replayed point may be below the one the previous
// run published last (a damaged journal), which is its floor; answering it
// meanwhile would make published TIDs go back, and a first status line
// below the file's last would begin a new epoch.
func (s *Service) afterReplay() {
	s.holdLocked(holdRecovery, "recovering the previous run's state (waiting for the storages' last TIDs)")
	s.ended = s.m.Counters().TransactionsEnded
}

// record journals the inputs of ins that are not resends, with one write
// (s.mu held).
func (s *Service) record(now int64, ins []input.Input) {
	if !s.jr.writing() {
		return
	}
	n, err := s.jr.append(now, ins, s.m.SourceSeq)
	s.journalErr(err, now, n)
}

func (s *Service) journalErr(err error, now int64, n int) {
	if err != nil {
		s.jr.stats.Errors++
		s.journalBroken(now, err, "journal "+s.jr.stats.Path+": append failed")
		return
	}
	s.jr.stats.Records += uint64(n)
}

// journalBroken stops journaling after err and holds publication until a
// rotation succeeds (s.mu held).
func (s *Service) journalBroken(now int64, err error, what string) {
	jr := &s.jr
	first := jr.stats.Broken == ""
	jr.stats.Broken = err.Error()
	if !first {
		return
	}
	jr.j.MarkBroken()
	s.holdLocked(holdJournal, "the journal cannot be written ("+IOReason(err)+")")
	s.logs.push(logEntry{rec: Record{Kind: RecCritical, Code: CodeJournalFailed, Time: now,
		Msg: what + ": journaling stops and PUBLICATION IS HELD (the point answered and written stays where it is; ZODB traffic is relayed as usual) " +
			"until the journal can be written again: a rotation is tried every second: " + err.Error()}})
}

// IOReason names the system error of err without its path (for /status,
// which shows the reason of a publication hold without the admin token).
func IOReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return "an I/O error"
}

// maybeRotate restarts the journal from an image when it is due, or when it
// is broken (s.mu held; Tick).
func (s *Service) maybeRotate(now int64) {
	jr := &s.jr
	if !jr.due() {
		return
	}
	broken := jr.stats.Broken
	if err := s.rotateLocked(now); err != nil {
		jr.stats.Errors++
		jr.stats.Broken = err.Error()
		if broken == "" {
			s.journalBroken(now, err, "journal "+jr.stats.Path+": rotation failed (the journal stays as it was; its new copy, written beside it first, was removed)")
		}
		return
	}
	if broken != "" {
		s.logs.push(logEntry{rec: Record{Kind: RecWarning, Code: CodeJournalFailed, Time: now,
			Msg: "the journal is written again (restarted from an image of the tracker): crash recovery works again and publication resumes"}})
	}
}

func (s *Service) rotateLocked(now int64) error {
	if err := s.jr.rotateTo(now, s.m.AppendImage(nil)); err != nil {
		return err
	}
	s.releaseLocked(holdJournal, now)
	return nil
}

// JournalStats returns the journal's figures (zero without a journal).
func (s *Service) JournalStats() JournalStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jr.current()
}

// CloseJournal syncs and closes the journal (Close does it too).
func (s *Service) CloseJournal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jr.close()
}
