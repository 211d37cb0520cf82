package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// object is one Kubernetes object as YAML decodes it.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				HostNetwork bool `yaml:"hostNetwork"`
				GracePeriod int  `yaml:"terminationGracePeriodSeconds"`
				Containers  []container
				Volumes     []map[string]any `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Name           string                    `yaml:"name"`
	Image          string                    `yaml:"image"`
	Command        []string                  `yaml:"command"`
	Args           []string                  `yaml:"args"`
	Ports          []map[string]any          `yaml:"ports"`
	ReadinessProbe map[string]any            `yaml:"readinessProbe"`
	LivenessProbe  map[string]any            `yaml:"livenessProbe"`
	Resources      map[string]map[string]any `yaml:"resources"`
}

// loadManifests decodes every YAML document of the manifests beside the
// binaries (cmd/front/k8s, cmd/framewire/k8s), strictly.
func loadManifests(t *testing.T) (map[string]object, map[string]map[string]any) {
	files, _ := filepath.Glob("k8s/*.yaml")
	more, _ := filepath.Glob("../framewire/k8s/*.yaml")
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("manifests: %v", files)
	}
	objs, raw := map[string]object{}, map[string]map[string]any{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			b, _ := yaml.Marshal(m)
			var o object
			if err := yaml.Unmarshal(b, &o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: object without apiVersion, kind or name: %v", f, m)
			}
			key := o.Kind + "/" + o.Metadata.Name
			objs[key], raw[key] = o, m
		}
		fh.Close()
	}
	return objs, raw
}

// TestManifests loads the Kubernetes manifests as YAML and checks what the
// deployment relies on: a front Deployment and Service, engine nodes that
// request nvidia.com/gpu and run in node mode, Redis with a Service, the
// probes, and drain bounds inside the grace periods.
func TestManifests(t *testing.T) {
	objs, raw := loadManifests(t)
	for _, k := range []string{"Deployment/framewire-front", "Service/framewire-front", "Deployment/framewire-node", "Deployment/framewire-redis", "Service/framewire-redis"} {
		if _, ok := objs[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}
	for k, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		sel := o.Spec.Selector.MatchLabels
		for l, v := range sel {
			if o.Spec.Template.Metadata.Labels[l] != v {
				t.Errorf("%s: selector %s=%s does not match the pod labels", k, l, v)
			}
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			if c.ReadinessProbe == nil {
				t.Errorf("%s/%s: no readiness probe", k, c.Name)
			}
		}
	}
	node := objs["Deployment/framewire-node"]
	if len(node.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("node: want one container")
	}
	nc := node.Spec.Template.Spec.Containers[0]
	if nc.Resources["limits"]["nvidia.com/gpu"] != 1 {
		t.Errorf("node: limits %v, want nvidia.com/gpu: 1", nc.Resources["limits"])
	}
	args := strings.Join(nc.Args, " ")
	for _, want := range []string{"-mode node", "-redis", "-jwt-secret-file", "-advertise", "-capacity", "-drain-timeout 45s"} {
		if !strings.Contains(args, want) {
			t.Errorf("node args %q lack %q", args, want)
		}
	}
	if node.Spec.Template.Spec.GracePeriod <= 45 {
		t.Errorf("node grace period %d s does not cover the 45 s drain", node.Spec.Template.Spec.GracePeriod)
	}
	fc := objs["Deployment/framewire-front"].Spec.Template.Spec.Containers
	if len(fc) != 1 || !slices.Contains(fc[0].Command, "/opt/framewire/front") || !strings.Contains(strings.Join(fc[0].Args, " "), "-keys-file") {
		t.Errorf("front container: %+v", fc)
	}
	svc := raw["Service/framewire-front"]["spec"].(map[string]any)["selector"].(map[string]any)
	if svc["app.kubernetes.io/name"] != "framewire-front" {
		t.Errorf("front Service selector %v", svc)
	}
	// Every flag in the manifests exists in the binaries.
	fo, err := parseFlags(fc[0].Args)
	if err != nil {
		t.Errorf("front args do not parse: %v", err)
	}
	// The front's drain (503 on /readyz, then requests in flight) fits in
	// its grace period.
	if g := time.Duration(objs["Deployment/framewire-front"].Spec.Template.Spec.GracePeriod) * time.Second; fo.drainDelay == 0 || fo.drainDelay+fo.drain >= g {
		t.Errorf("front: -drain-delay %s + -drain %s, grace period %s", fo.drainDelay, fo.drain, g)
	}
}

// TestManifestsAnyNamespace: the manifests apply to any namespace (none
// is named, services are reached by their short names) and node pods do
// not claim host ports, so a host takes as many node pods as it has GPUs.
func TestManifestsAnyNamespace(t *testing.T) {
	objs, raw := loadManifests(t)
	for k, o := range objs {
		if o.Metadata.Namespace != "" {
			t.Errorf("%s: metadata.namespace %q", k, o.Metadata.Namespace)
		}
		walkStrings(raw[k], func(v string) {
			if strings.Contains(v, ".svc") || strings.Contains(v, ".default") {
				t.Errorf("%s: %q names a namespace (use the Service's short name)", k, v)
			}
		})
		spec := o.Spec.Template.Spec
		if spec.HostNetwork {
			t.Errorf("%s: hostNetwork allows one pod per host", k)
		}
		for _, c := range spec.Containers {
			for _, p := range c.Ports {
				if _, ok := p["hostPort"]; ok {
					t.Errorf("%s/%s: hostPort %v allows one pod per host", k, c.Name, p["hostPort"])
				}
			}
		}
	}
}

// walkStrings calls fn with every string value under v.
func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case map[string]any:
		for _, x := range v {
			walkStrings(x, fn)
		}
	case []any:
		for _, x := range v {
			walkStrings(x, fn)
		}
	}
}
