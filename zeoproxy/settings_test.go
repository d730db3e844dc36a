package zeoproxy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// A zero setting takes the default of the configuration attribute of the
// same name (docs/config.md, "limits"): one name and one default from the
// configuration to the relay. (Only this test imports config: the relay
// itself does not know the schema.)
func TestSettingsDefaultAsTheConfiguration(t *testing.T) {
	d := zeoproxy.DefaultSettings()
	require.Equal(t, config.DefaultMaxFrameSize, d.MaxFrameSize)
	require.Equal(t, config.DefaultMaxPreRegisterFrame, d.MaxPreRegisterFrame)
	require.Equal(t, 2*config.DefaultMaxFrameSize, d.DecodeBudget, "decode_budget: twice max_frame_size")
	require.Equal(t, config.DefaultRegisterTimeout, d.RegisterTimeout)
	require.Zero(t, d.MaxZEOConnections, "0: no limit, in both")
	require.False(t, d.ClientLabelIdentity)

	p := zeoproxy.New(zeoproxy.Config{MaxFrameSize: 1 << 10}, nil)
	defer p.Close()
	small := p.Settings()
	require.Equal(t, 1<<10, small.MaxPreRegisterFrame, "max_pre_register_frame: at most max_frame_size")
	require.Equal(t, 2<<10, small.DecodeBudget)
}
