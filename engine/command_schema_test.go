package engine_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/framewire/framewire/engine"
)

// A command declared from a run-time Schema (the Python package's path)
// has the schema of the equivalent Go struct and validates alike.
func TestCommandFromSchemaMatchesStructCommand(t *testing.T) {
	structCmd := engine.Command("set_image", "", func(*engine.Session, imageParams) error { return nil })
	schema := structCmd.Schema()
	schema["seed"] = engine.Param{Type: "integer", Required: false, Default: 7} // uint16 → integer: same schema
	type call struct {
		args  engine.Args
		files engine.Files
	}
	got := make(chan call, 1)
	c := engine.CommandFromSchema("set_image", "", schema, func(_ *engine.Session, a engine.Args, f engine.Files) error {
		got <- call{a, f}
		return nil
	})
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	a, _ := json.Marshal(structCmd.Schema())
	b, _ := json.Marshal(c.Schema())
	if string(a) != string(b) {
		t.Fatalf("schema from Schema\n%s\nwant (from the struct)\n%s", b, a)
	}
	e := newEngine(t, engine.Model{Commands: []engine.CommandDef{c}})
	s := start(t, e)
	up := map[string]engine.Upload{"image": {ID: "a1b2", Name: "cat.png", Size: 3, Data: []byte("png")}}
	if err := s.Call(ctxT(t), "set_image", json.RawMessage(`{"steps":3,"prompt":"cat"}`), up); err != nil {
		t.Fatal(err)
	}
	g := <-got
	want := engine.Args{"strength": 0.5, "steps": int64(3), "mode": "fast", "seed": int64(7), "loop": false, "prompt": "cat"}
	if !reflect.DeepEqual(g.args, want) || len(g.files) != 1 || string(g.files["image"].Data) != "png" {
		t.Fatalf("handler got %v %v, want %v and the image", g.args, g.files, want)
	}
	wantErr(t, s.Dispatch("set_image", json.RawMessage(`{"steps":0,"prompt":"x"}`), up), engine.ErrInvalidArgs, `"steps": got 0; want at least 1`)
	wantErr(t, s.Dispatch("set_image", json.RawMessage(`{"steps":3,"prompt":"x","mode":"slow"}`), up), engine.ErrInvalidArgs, `want one of fast, quality`)
}

func TestCommandFromSchemaDeclarationErrors(t *testing.T) {
	h := func(*engine.Session, engine.Args, engine.Files) error { return nil }
	cases := []struct {
		schema engine.Schema
		says   string
	}{
		{engine.Schema{"x": {Type: "list", Required: true}}, `type "list"; want string, boolean, integer, number or file`},
		{engine.Schema{"x": {Type: "string"}}, `"x" is optional but has no default`},
		{engine.Schema{"x": {Type: "file", Default: "a"}}, "cannot have a default"},
		{engine.Schema{"x": {Type: "string", Required: true, Enum: []string{"a,b"}}}, "contains a comma"},
		{engine.Schema{"x": {Type: "integer", Default: "ten"}}, `want a number`},
		{engine.Schema{"x": {Type: "string", Required: true, Minimum: new(float64)}}, "applies to numbers only"},
	}
	for _, c := range cases {
		wantErr(t, engine.CommandFromSchema("c", "", c.schema, h).Err(), engine.ErrInvalidModel, c.says)
	}
	wantErr(t, engine.CommandFromSchema("c", "", nil, nil).Err(), engine.ErrInvalidModel, "nil handler")
}
