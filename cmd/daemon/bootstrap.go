package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// The bootstrap of every role (docs/design.md, "Bootstrap"): each storage's
// last TID, read over a connection of our own before the proxy accepts its
// first client, so that no transaction can be in flight through it. Those
// TIDs are the first point (all-in-one, fleet tracker), the floor of the
// relay's in-doubt resolution (all-in-one, sidecar), and what a restarted
// sidecar's previous runs are settled at.

// readLastTID reads storage s's last TID (zrpc.LastTID: dial, register
// read-only, lastTransaction, with its zeo block's upstream TLS). A proxy
// relaying s keeps it as its floor for in-doubt resolution.
func (d *Daemon) readLastTID(ctx context.Context, s *config.Storage) (txn.TID, error) {
	z := s.ZEO
	network, addr := upstreamAddr(z)
	tid, err := zrpc.LastTID(ctx, network, addr, s.Name, &zrpc.ClientOptions{CallTimeout: 10 * time.Second, TLS: d.upstreamTLSConfig(z)})
	if err != nil {
		return 0, fmt.Errorf("server %s (%s): %w", z.Name, z.Upstream, err)
	}
	if d.Proxy != nil {
		d.Proxy.NoteLastTID(s.ID, tid)
	}
	return tid, nil
}

// upstreamAddr is the network and address of z's ZEO server.
func upstreamAddr(z *config.ZEO) (network, addr string) {
	if z.Upstream.IsUnix() {
		return "unix", z.Upstream.NetAddress()
	}
	return "tcp", z.Upstream.NetAddress()
}

// zeoStorages are the configuration's storages behind a zeo block.
func zeoStorages(cfg *config.Config) []*config.Storage {
	var out []*config.Storage
	for _, s := range cfg.Storages {
		if s.ZEO != nil {
			out = append(out, s)
		}
	}
	return out
}

// bootstrapStorages reads the last TID of each of storages (30 s each);
// those that cannot be read are returned in failed, for retryBootstrap once
// the role has used the others.
func (d *Daemon) bootstrapStorages(storages []*config.Storage) (values map[string]txn.TID, failed []*config.Storage) {
	values = map[string]txn.TID{}
	for _, s := range storages {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		tid, err := d.readLastTID(ctx, s)
		cancel()
		if err != nil {
			d.Log.Error("bootstrap: cannot read a storage's last TID; retrying in the background", "storage", s.ID, "error", err)
			failed = append(failed, s)
			continue
		}
		d.Log.Info("bootstrap", "storage", s.ID, "last_tid", tid.Hex())
		values[s.ID] = tid
	}
	return values, failed
}

// retryBootstrap reads each storage whose server was unreachable at start
// until it answers (backoff from 1 s to a minute, until the daemon stops),
// then hands its last TID to late (nil: the proxy's floor is all there is
// to set). Storages read late join while clients are served: the tracker
// publishes a storage only when its group has nothing in flight, so a late
// value cannot cut a transaction.
func (d *Daemon) retryBootstrap(failed []*config.Storage, late func(s *config.Storage, tid txn.TID)) {
	for _, s := range failed {
		d.wg.Add(1)
		go d.retryLastTID(s, late)
	}
}

func (d *Daemon) retryLastTID(s *config.Storage, late func(*config.Storage, txn.TID)) {
	defer d.wg.Done()
	backoff := time.Second
	for {
		select {
		case <-d.stop:
			return
		case <-time.After(backoff):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		tid, err := d.readLastTID(ctx, s)
		cancel()
		if err == nil {
			d.Log.Info("bootstrap (late)", "storage", s.ID, "last_tid", tid.Hex())
			if late != nil {
				late(s, tid)
			}
			return
		}
		backoff = min(2*backoff, time.Minute)
		d.Log.Warn("bootstrap retry failed", "storage", s.ID, "error", err, "retry_in", backoff)
	}
}
