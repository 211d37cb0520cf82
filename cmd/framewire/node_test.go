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
