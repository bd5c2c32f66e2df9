package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestNodeFlagsNameWhatIsWrong(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-peers", "1=127.0.0.1:7000"}, "-id"},
		{[]string{"-id", "1"}, "-peers or -join"},
		{[]string{"-id", "1", "-peers", "1=127.0.0.1:1", "-join", "127.0.0.1:2"}, "give one"},
		{[]string{"-id", "1", "-join", "nohost"}, "-join"},
		{[]string{"-id", "1", "-join", "127.0.0.1:2", "-snapshot-entries", "-1"}, "-snapshot-entries"},
		{[]string{"-id", "1", "-peers", "1=nohost"}, "-peers"},
		{[]string{"-id", "1", "-peers", "x=127.0.0.1:1"}, "-peers"},
		{[]string{"-id", "2", "-peers", "1=127.0.0.1:1"}, "names no node 2"},
		{[]string{"-id", "1", "-peers", "1=127.0.0.1:1,1=127.0.0.1:2"}, "twice"},
		{[]string{"-id", "1", "-peers", "1=127.0.0.1:1", "-weight", "0"}, "-weight"},
		{[]string{"-id", "1", "-peers", "1=127.0.0.1:1", "-colour", "red"}, "colour"},
		{[]string{"-id", "1", "-peers", "1=127.0.0.1:1", "extra"}, "extra"},
	} {
		_, err := parseNodeFlags(tt.args, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want a usage error naming %q", tt.args, err, tt.want)
		}
	}
	if err := run(t.Context(), []string{"launch"}, io.Discard, io.Discard); !errors.As(err, new(usageError)) {
		t.Errorf("an unknown command: %v, want a usage error", err)
	}
}

// A node started from flags serves the HTTP API, joins its group, and
// stops cleanly when its context ends.
func TestNodeServesUntilStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"node", "-id", "1", "-dir", t.TempDir(), "-rpc", "127.0.0.1:0",
			"-peers", "1=127.0.0.1:0", "-http", "127.0.0.1:0", "-group", "cache", "-weight", "3"}, w, io.Discard)
		w.Close()
	}()
	lines := bufio.NewScanner(out)
	var api string
	for api == "" && lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "http on "); ok {
			api = "http://" + a
		}
	}
	go io.Copy(io.Discard, out)
	req, _ := http.NewRequestWithContext(ctx, "PUT", api+"/v1/kv/k", strings.NewReader("v"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("put: %v %v", resp, err)
	}
	resp, err := http.Get(api + "/v1/kv/k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "v" {
		t.Errorf("get: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(api + "/v1/ring/cache?key=k")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"server":"node-1"`) {
		t.Errorf("ring: %d %s; want node-1, the group's one member", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
