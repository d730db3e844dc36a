package zeoproxy

import (
	"context"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// NoteLastTID gives the proxy a storage's last TID as read at bootstrap
// (zrpc.LastTID, by the daemon, before the proxy accepts its first client,
// or later for a storage that was unreachable then): no transaction can be
// in flight through the proxy below it, so it is the floor for in-doubt
// resolution (docs/design.md, "Bootstrap", "In-doubt resolution").
func (p *Proxy) NoteLastTID(storageID string, tid txn.TID) { p.noteTID(storageID, tid) }

// lastTIDOf reads the last TID of the storage named zeoName on l's server, on
// a connection of the proxy's own: zrpc.LastTID, the bootstrap read, with
// the upstream's TLS (a blind connection's end, resolve.go).
func (p *Proxy) lastTIDOf(ctx context.Context, l *listener, zeoName string) (txn.TID, error) {
	network, addr := splitAddr(l.cfg.Upstream)
	tid, err := zrpc.LastTID(ctx, network, addr, zeoName, l.clientOptions(zrpc.ClientOptions{CallTimeout: p.cfg.dialTimeout}))
	if err != nil {
		return 0, fmt.Errorf("server %s: %w", l.cfg.Name, err)
	}
	return tid, nil
}
