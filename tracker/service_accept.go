package tracker

import (
	"errors"
	"fmt"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

// ErrHistoryWentBack is returned by AcceptPartialLive when a pinned
// storage's live last TID is below a TID the tracker knows was committed
// there: the storage lost history (a cut, a restore in place) and accepting
// would publish a TID it no longer has.
var ErrHistoryWentBack = errors.New("tracker: a storage's history went back")

// LiveReader reads the last committed TID of storages from the storages
// themselves; ok false for a storage it cannot read (a classic-only id).
type LiveReader func(storages []string) (map[string]txn.TID, error)

// AcceptPartialLive is AcceptPartial with a check of the live state that is
// accepted. What the tracker knows committed on the pinned storages is
// noted first, then their live last TIDs are read (without the lock: it is
// network I/O), then, under the lock, every pinned storage must have a live
// last TID at or above what was known committed before the read — a
// commit known before the read can only be missing if the storage's history
// went back, and then accepting would publish a TID cut away. On success
// the live values are fed as LastTID (the live state is the baseline
// accepted) and the pin is released.
func (s *Service) AcceptPartialLive(pin uint64, live LiveReader) error {
	if watched, ok := s.unaccountedPin(pin); ok {
		return s.acceptUnaccountedLive(pin, watched, live)
	}
	storages, known, err := s.pinnedTransients(pin)
	if err != nil {
		return err
	}
	got, err := live(storages)
	if err != nil {
		return fmt.Errorf("tracker: accept pin %d: read the storages' last TIDs: %w", pin, err)
	}
	var back []string
	for _, id := range storages {
		v, ok := got[id]
		if k, kok := known[id]; ok && kok && v < k {
			back = append(back, fmt.Sprintf("%s: live last TID %s (%s) is below %s (%s), committed and known before",
				id, v.Hex(), v, k.Hex(), k))
		}
	}
	if len(back) > 0 {
		return fmt.Errorf("%w: accepting pin %d would publish TIDs the storages no longer have: %v. "+
			"Restart tidstorage serve: it reads every storage again and starts a new status file epoch at the live state",
			ErrHistoryWentBack, pin, back)
	}
	var aerr error
	ok := s.input(func(now int64) {
		for _, id := range storages {
			if v, ok := got[id]; ok {
				s.applyIn(now, input.LastTID{Storage: id, TID: v})
			}
		}
		aerr = s.applyIn(now, input.Accept{Pin: pin})
	})
	if !ok {
		return errStopped
	}
	return aerr
}

// pinnedTransients returns the storages of an active pin and the highest
// TID known committed on each.
func (s *Service) pinnedTransients(pin uint64) ([]string, map[string]txn.TID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != "" {
		return nil, nil, errStopped
	}
	for _, p := range s.m.Pins() {
		if p.ID != pin {
			continue
		}
		if p.Kind == PinBlind {
			return nil, nil, ErrBlindPin
		}
		known := map[string]txn.TID{}
		for _, st := range s.m.Status().Storages {
			if st.Known {
				known[st.ID] = st.Transient
			}
		}
		return p.Storages, known, nil
	}
	return nil, nil, fmt.Errorf("%w: %d", ErrNoSuchPin, pin)
}

// unaccountedPin reports whether pin is an unaccounted pin, with the
// watched storages (what acceptUnaccountedLive must read).
func (s *Service) unaccountedPin(pin uint64) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.m.Pins() {
		if p.ID == pin && p.Kind == PinUnaccounted {
			var watched []string
			for _, st := range s.m.Status().Storages {
				if st.Watched && !st.WarnOnly {
					watched = append(watched, st.ID)
				}
			}
			return watched, true
		}
	}
	return nil, false
}

// acceptUnaccountedLive reads every watched storage's live last TID and
// accepts, in one input, every unaccounted commit up to them once the
// histories have reached them (Machine.AcceptUnaccounted), retrying for a
// few seconds while a history catches up.
func (s *Service) acceptUnaccountedLive(pin uint64, watched []string, live LiveReader) error {
	got, err := live(watched)
	if err != nil {
		return fmt.Errorf("tracker: accept pin %d: read the storages' last TIDs: %w", pin, err)
	}
	vs := sortedTIDs(got)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var aerr error
		if !s.input(func(now int64) {
			aerr = s.applyIn(now, input.AcceptUnaccounted{Pin: pin, Live: vs})
		}) {
			return errStopped
		}
		if !errors.Is(aerr, ErrHistoryBehind) || time.Now().After(deadline) {
			return aerr
		}
		time.Sleep(50 * time.Millisecond)
	}
}
