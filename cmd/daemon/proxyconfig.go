package daemon

import (
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// finishWait bounds how long the relay keeps a server connection whose
// client left with a tpc_finish pending.
const finishWait = 60 * time.Second

// proxyConfig is the one place where the configuration becomes the relay's
// own settings: zeoproxy knows nothing of the config schema. The storage ids
// are the config's (explicit, or config.DefaultStorageID from client_address);
// the relay names storages the config does not list from the same
// client_address by the same rule.
func proxyConfig(cfg *config.Config, log hclog.Logger) zeoproxy.Config {
	pc := zeoproxy.Config{
		MaxDecode:       int(cfg.Limits.MaxFrameSize),
		PreZEOMax:       int(cfg.Limits.MaxPreRegisterFrame),
		DecodeBudget:    int(cfg.Limits.DecodeBudget), // 0: twice MaxDecode
		RegisterTimeout: cfg.Limits.RegisterTimeout,
		MaxConns:        cfg.Limits.MaxZEOConnections,
		FinishWait:      finishWait,
		LabelIdentity:   cfg.ClientLabelIdentity,
		Logger:          log,
	}
	for _, z := range cfg.ZEO {
		sc := zeoproxy.ServerConfig{
			Name:          z.Name,
			Listen:        z.Listen.String(),
			Upstream:      z.Upstream.String(),
			ClientAddress: z.ClientAddress.String(),
			BlindTimeout:  z.BlindTimeout,
			Storages:      make(map[string]string, len(z.Storages)),
		}
		for _, s := range z.Storages {
			sc.Storages[s.Name] = s.ID
		}
		pc.Servers = append(pc.Servers, sc)
	}
	return pc
}
