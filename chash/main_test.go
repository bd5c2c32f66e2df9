package chash

import (
	"testing"

	"github.com/bifrost-go/bifrost/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m, "github.com/bifrost-go/bifrost/chash") }
