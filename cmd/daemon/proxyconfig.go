package daemon

import (
	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// proxyConfig is the one place where the configuration becomes the relay's
// own settings: zeoproxy knows nothing of the config schema. Each setting
// bears the name of the config field it comes from, with the same default
// (docs/config.md, "limits"). The storage ids
// are the config's (explicit, or config.DefaultStorageID from client_address);
// the relay names storages the config does not list from the same
// client_address by the same rule.
func proxyConfig(cfg *config.Config, log hclog.Logger) zeoproxy.Config {
	pc := zeoproxy.Config{
		MaxFrameSize:        int(cfg.Limits.MaxFrameSize),
		MaxPreRegisterFrame: int(cfg.Limits.MaxPreRegisterFrame),
		DecodeBudget:        int(cfg.Limits.DecodeBudget), // 0: twice MaxFrameSize
		RegisterTimeout:     cfg.Limits.RegisterTimeout,
		MaxZEOConnections:   cfg.Limits.MaxZEOConnections,
		ClientLabelIdentity: cfg.ClientLabelIdentity,
		Logger:              log,
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
