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
	if d.fl.server != nil {
		// A sidecar's resend may still account for what the accept would
		// take as the new baseline, or end a transaction half of which it
		// would publish: the accept waits until every sidecar the tracker
		// expects is back and caught up (or retired).
		if behind := d.fl.server.Behind(); len(behind) > 0 {
			return fmt.Errorf("%w: %s", fleet.ErrSidecarsBehind, strings.Join(behind, "; "))
		}
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
		for _, s := range d.cfg.Storages {
			if s.ID != id || s.ZEO == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := d.Proxy.BootstrapOne(ctx, s.ZEO.Name, s.Name)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("storage %s: %w", id, err)
			}
			out[id] = r.TID
		}
	}
	return out, nil
}
