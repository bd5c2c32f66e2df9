package rpc

import "testing"

// TestConfigValidation checks that bad configurations are refused and
// the zero value is not.
func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{MaxFrameSize: -1},
		{MaxFrameSize: headerSize - 1},
		{MaxFrameSize: 1 << 31},
		{MaxInFlight: -5},
		{ReadBufferSize: 10},
		{MaxInFlightBytes: -1},
		{MaxInFlightBytes: DefaultMaxFrameSize - 1},
		{MaxFrameSize: 1 << 20, MaxInFlightBytes: 1<<20 - 1},
		{MaxConnections: -1},
	}
	for _, cfg := range bad {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("NewServer(%+v) accepted a bad config", cfg)
		}
	}
	if _, err := NewServer(Config{}); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	budgets := []struct {
		cfg  Config
		want int64
	}{
		{Config{}, DefaultMaxInFlightBytes},
		{Config{MaxFrameSize: 128 << 20}, 128 << 20},
		{Config{MaxFrameSize: 1 << 20, MaxInFlightBytes: 1 << 20}, 1 << 20},
	}
	for _, tt := range budgets {
		s, err := NewServer(tt.cfg)
		if err != nil {
			t.Errorf("NewServer(%+v): %v", tt.cfg, err)
			continue
		}
		if got := s.cfg.MaxInFlightBytes; got != tt.want {
			t.Errorf("NewServer(%+v): MaxInFlightBytes %d, want %d", tt.cfg, got, tt.want)
		}
	}
	if _, err := NewPool(ClientConfig{MaxFrameSize: -1}); err == nil {
		t.Error("NewPool accepted a bad config")
	}
}
