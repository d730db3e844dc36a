package config

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so that "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseSize parses a byte size: a whole number with an optional unit (B,
// kB/KB, MB, GB, KiB, MiB, GiB), e.g. "64MiB".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 1 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size; write a positive whole number of bytes or use a unit, such as \"64MiB\"", s)
	}
	return n * mult, nil
}

func (d *decoder) size(attr *hcl.Attribute, dst *int64) {
	if attr == nil {
		return
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		d.diags = append(d.diags, diags...)
		return
	}
	var (
		n   int64
		err error
	)
	switch {
	case val.IsNull() || !val.IsKnown():
		err = fmt.Errorf("no value")
	case val.Type() == cty.String:
		n, err = ParseSize(val.AsString())
	case val.Type() == cty.Number:
		bf := val.AsBigFloat()
		i, acc := bf.Int64()
		if acc != big.Exact || i < 1 {
			err = fmt.Errorf("%s is not a positive whole number of bytes", bf.Text('g', -1))
		}
		n = i
	default:
		err = fmt.Errorf("use a number of bytes or a string such as \"64MiB\"")
	}
	if err != nil {
		d.errorf(attr.Expr.Range(), "Invalid size", "%s: %v", attr.Name, err)
		return
	}
	*dst = n
}
