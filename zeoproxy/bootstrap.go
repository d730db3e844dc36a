package zeoproxy

import (
	"context"
	"fmt"
	"sort"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// BootstrapResult is one storage's last TID as read from its server.
type BootstrapResult struct {
	Server  string // ServerConfig.Name
	Name    string // ZEO storage name
	Storage string // storage id
	TID     txn.TID
	Err     error
}

// Bootstrap asks every configured storage for its last TID through a
// connection of the proxy's own (register read-only + lastTransaction). Done
// before the proxy accepts its first client, no transaction can be in flight
// through it, so these TIDs form the first coherent point (docs/design.md, "Bootstrap"). The
// TIDs read are also the floor for in-doubt resolution.
func (p *Proxy) Bootstrap(ctx context.Context) []BootstrapResult {
	var out []BootstrapResult
	ls := p.listenersNow()
	for _, l := range ls {
		names := make([]string, 0, len(l.cfg.Storages))
		for name := range l.cfg.Storages {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			r := BootstrapResult{Server: l.cfg.Name, Name: name, Storage: l.storageID(name)}
			r.TID, r.Err = p.lastTIDOf(ctx, l, name)
			if r.Err == nil {
				p.noteTID(r.Storage, r.TID)
			}
			out = append(out, r)
		}
	}
	return out
}

// BootstrapOne retries one storage (after a failed Bootstrap).
func (p *Proxy) BootstrapOne(ctx context.Context, server, name string) (BootstrapResult, error) {
	ls := p.listenersNow()
	for _, l := range ls {
		if l.cfg.Name != server {
			continue
		}
		r := BootstrapResult{Server: server, Name: name, Storage: l.storageID(name)}
		r.TID, r.Err = p.lastTIDOf(ctx, l, name)
		if r.Err == nil {
			p.noteTID(r.Storage, r.TID)
		}
		return r, r.Err
	}
	return BootstrapResult{}, fmt.Errorf("zeoproxy: no server %q", server)
}

func (p *Proxy) lastTIDOf(ctx context.Context, l *listener, name string) (txn.TID, error) {
	network, addr := splitAddr(l.cfg.Upstream)
	c, err := zrpc.Dial(ctx, network, addr, l.clientOptions(zrpc.ClientOptions{CallTimeout: p.cfg.dialTimeout}))
	if err != nil {
		return 0, fmt.Errorf("server %s (%s): %w", l.cfg.Name, l.cfg.Upstream, err)
	}
	defer c.Close()
	if _, err := c.Register(ctx, name, true); err != nil {
		return 0, fmt.Errorf("server %s storage %q: register: %w", l.cfg.Name, name, err)
	}
	tid, err := c.LastTransaction(ctx)
	if err != nil {
		return 0, fmt.Errorf("server %s storage %q: lastTransaction: %w", l.cfg.Name, name, err)
	}
	return tid, nil
}
