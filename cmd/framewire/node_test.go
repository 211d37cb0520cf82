package main

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestNodeManifestFlags: the engine node manifest's arguments parse as
// this binary's flags, in node mode.
func TestNodeManifestFlags(t *testing.T) {
	b, err := os.ReadFile("k8s/node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args []string `yaml:"args"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags(d.Spec.Template.Spec.Containers[0].Args)
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode != "node" || o.Node.Capacity != 8 || o.Loopback {
		t.Errorf("parsed %+v", o)
	}
	if _, err := parseFlags([]string{"-mode", "cluster"}); err == nil {
		t.Error("-mode cluster accepted")
	}
}

// Issue 18: a flag of the other mode is refused, not ignored; the HTTP
// flags work in both.
func TestModeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-capacity", "3"},
		{"-redis", "127.0.0.1:1"},
		{"-mode", "local", "-drain-timeout", "1s"},
		{"-mode", "node", "-orphan-grace", "1s"},
		{"-mode", "node", "-public-url", "http://x"},
		{"-max-conns", "0"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q accepted", args)
		} else {
			t.Logf("%q: %v", args, err)
		}
	}
	for _, mode := range []string{"local", "node"} {
		o, err := parseFlags([]string{"-mode", mode, "-max-conns", "9", "-max-conns-per-ip", "2", "-read-timeout", "2s", "-idle-timeout", "3s"})
		if err != nil {
			t.Fatal(err)
		}
		if o.MaxConns != 9 || o.MaxConnsPerIP != 2 || o.ReadTimeout != 2e9 || o.IdleTimeout != 3e9 {
			t.Errorf("-mode %s: %+v", mode, o.Flags)
		}
	}
}
