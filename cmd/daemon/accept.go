package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/fleet"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// AcceptPartial is the operator's accept (POST /accept-partial), checked
// against the storages themselves: the live last TIDs of
// the pinned storages that the proxy serves are read through its own
// connection, and the accept is refused if one went back below what the
// tracker saw committed (a cut or a restore while the daemon ran), instead
// of publishing a TID the storage no longer has. Storages only classic
// clients report cannot be read and are accepted as before.
func (d *Daemon) AcceptPartial(pin uint64) error {
	if r, ok := d.role.(*fleetTracker); ok && r.server != nil {
		// A sidecar's resend may still account for what the accept would
		// take as the new baseline, or end a transaction half of which it
		// would publish: the accept waits until every sidecar the tracker
		// expects is back and caught up (or retired).
		if behind := r.server.Behind(); len(behind) > 0 {
			return fmt.Errorf("%w: %s", fleet.ErrSidecarsBehind, strings.Join(behind, "; "))
		}
	}
	if d.Tracker == nil {
		return d.role.status().AcceptPartial(pin) // a sidecar: no pin here
	}
	if d.Proxy == nil {
		return d.Tracker.AcceptPartial(pin)
	}
	return d.Tracker.AcceptPartialLive(pin, d.readLive)
}

// readLive reads the last TID of the given storages that the proxy serves.
func (d *Daemon) readLive(ids []string) (map[string]txn.TID, error) {
	out := map[string]txn.TID{}
	for _, id := range ids {
		s := d.cfg.StorageByID(id)
		if s == nil || s.ZEO == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tid, err := d.readLastTID(ctx, s)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", id, err)
		}
		out[id] = tid
	}
	return out, nil
}
