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
	}
	for _, cfg := range bad {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("NewServer(%+v) accepted a bad config", cfg)
		}
	}
	if _, err := NewServer(Config{}); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	if _, err := NewPool(ClientConfig{MaxFrameSize: -1}); err == nil {
		t.Error("NewPool accepted a bad config")
	}
}
