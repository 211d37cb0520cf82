package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/framewire/framewire/engine"
)

type imageParams struct {
	Strength float64      `json:"strength" min:"0" max:"1" default:"0.5" description:"effect strength"`
	Steps    int          `json:"steps" min:"1" max:"50"`
	Mode     string       `json:"mode" enum:"fast,quality" default:"fast"`
	Seed     uint16       `json:"seed" default:"7"`
	Loop     bool         `json:"loop" default:"false"`
	Prompt   string       `json:"prompt" desc:"what to draw"`
	Image    engine.File  `json:"image"`
	Mask     *engine.File `json:"mask"`
	ignored  int          //nolint:unused // unexported fields are not parameters
	Skipped  int          `json:"-"`
}

func TestCommandSchemaDerivation(t *testing.T) {
	c := engine.Command("set_image", "change the picture", func(*engine.Session, imageParams) error { return nil })
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	b, _ := json.Marshal(c.Schema())
	want := `{"image":{"type":"file","required":true},` +
		`"loop":{"type":"boolean","required":false,"default":false},` +
		`"mask":{"type":"file","required":false},` +
		`"mode":{"type":"string","enum":["fast","quality"],"required":false,"default":"fast"},` +
		`"prompt":{"type":"string","description":"what to draw","required":true},` +
		`"seed":{"type":"integer","required":false,"default":7},` +
		`"steps":{"type":"integer","minimum":1,"maximum":50,"required":true},` +
		`"strength":{"type":"number","minimum":0,"maximum":1,"description":"effect strength","required":false,"default":0.5}}`
	if string(b) != want {
		t.Fatalf("schema\n got %s\nwant %s", b, want)
	}
}

// The §8 example descriptor is reproduced exactly.
func TestCommandSchemaProtocolExample(t *testing.T) {
	type p struct {
		Strength float64 `json:"strength" min:"0" max:"1" default:"0.5" description:"effect strength"`
	}
	c := engine.Command("x", "", func(*engine.Session, p) error { return nil })
	b, _ := json.Marshal(c.Schema())
	// Same keys and values as protocol §8's example; encoding/json orders keys by field.
	var got, want map[string]map[string]any
	_ = json.Unmarshal(b, &got)
	_ = json.Unmarshal([]byte(`{"strength":{"type":"number","minimum":0,"maximum":1,"required":false,"default":0.5,"description":"effect strength"}}`), &want)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("got %s want %s", gb, wb)
	}
}

func TestCommandDeclarationErrors(t *testing.T) {
	type bad1 struct {
		L []int `json:"l"`
	}
	type bad2 struct {
		S string `json:"s" min:"1"`
	}
	type bad3 struct {
		N int `json:"n" enum:"1,2"`
	}
	type bad4 struct {
		N int `json:"n" default:"abc"`
	}
	type bad5 struct {
		N int `json:"n" min:"5" max:"1"`
	}
	type bad6 struct {
		M string `json:"m" enum:"a,b" default:"c"`
	}
	type bad7 struct {
		N float64 `json:"n" max:"1" default:"2"`
	}
	type bad8 struct {
		A int `json:"X"`
		X int
	}
	type bad9 struct {
		F engine.File `json:"f" default:"x"`
	}
	cases := []struct {
		def  engine.CommandDef
		says []string
	}{
		{engine.Command("", "", func(*engine.Session, struct{}) error { return nil }), []string{"empty name"}},
		{engine.Command[struct{}]("nil", "", nil), []string{`"nil" has a nil handler`}},
		{engine.Command("str", "", func(*engine.Session, string) error { return nil }), []string{"must be a struct type", "got string"}},
		{engine.Command("b1", "", func(*engine.Session, bad1) error { return nil }), []string{`"l" has type []int`}},
		{engine.Command("b2", "", func(*engine.Session, bad2) error { return nil }), []string{`min:"1" applies to numbers only`}},
		{engine.Command("b3", "", func(*engine.Session, bad3) error { return nil }), []string{"enum applies to strings only"}},
		{engine.Command("b4", "", func(*engine.Session, bad4) error { return nil }), []string{`default:"abc"`, "want a number"}},
		{engine.Command("b5", "", func(*engine.Session, bad5) error { return nil }), []string{"min 5 is greater than max 1"}},
		{engine.Command("b6", "", func(*engine.Session, bad6) error { return nil }), []string{`got "c"; want one of a, b`}},
		{engine.Command("b7", "", func(*engine.Session, bad7) error { return nil }), []string{"want at most 1"}},
		{engine.Command("b8", "", func(*engine.Session, bad8) error { return nil }), []string{`two fields are named "X"`}},
		{engine.Command("b9", "", func(*engine.Session, bad9) error { return nil }), []string{"cannot have a default"}},
	}
	for _, c := range cases {
		wantErr(t, c.def.Err(), engine.ErrInvalidModel, c.says...)
		_, err := engine.New(engine.Model{Name: "m", Commands: []engine.CommandDef{c.def}, New: func(engine.Config) (engine.Runner, error) { return waitRunner(), nil }})
		wantErr(t, err, engine.ErrInvalidModel, c.says...)
	}
	ok := engine.Command("twice", "", func(*engine.Session, struct{}) error { return nil })
	_, err := engine.New(engine.Model{Name: "m", Commands: []engine.CommandDef{ok, ok}, New: func(engine.Config) (engine.Runner, error) { return waitRunner(), nil }})
	wantErr(t, err, engine.ErrInvalidModel, `command "twice" twice`)
	_, err = engine.New(engine.Model{Name: "m", Commands: []engine.CommandDef{{}}, New: func(engine.Config) (engine.Runner, error) { return waitRunner(), nil }})
	wantErr(t, err, engine.ErrInvalidModel, "not built with engine.Command")
}

func TestDispatchValidatesAndFillsDefaults(t *testing.T) {
	got := make(chan imageParams, 1)
	e := newEngine(t, engine.Model{Commands: []engine.CommandDef{
		engine.Command("set_image", "", func(_ *engine.Session, p imageParams) error { got <- p; return nil }),
		engine.Command("fail", "", func(*engine.Session, struct{}) error { return errors.New("model said no") }),
		engine.Command("boom", "", func(*engine.Session, struct{}) error { panic("kaboom") }),
	}})
	s := start(t, e)
	up := map[string]engine.Upload{"image": {ID: "a1b2", Name: "cat.png", MimeType: "image/png", Size: 3, Data: []byte("png")}}
	if err := s.Call(ctxT(t), "set_image", json.RawMessage(`{"steps":3.0,"prompt":"cat","mode":null}`), up); err != nil {
		t.Fatal(err)
	}
	p := <-got
	if p.Strength != 0.5 || p.Steps != 3 || p.Mode != "fast" || p.Seed != 7 || p.Loop || p.Prompt != "cat" ||
		p.Image.Name != "cat.png" || string(p.Image.Data) != "png" || p.Mask != nil {
		t.Fatalf("args %+v", p)
	}
	b := make([]byte, 3)
	if n, _ := p.Image.Open().Read(b); n != 3 {
		t.Fatal("File.Open")
	}

	bad := []struct {
		name, args string
		uploads    map[string]engine.Upload
		sentinel   error
		says       []string
	}{
		{"nope", `{}`, nil, engine.ErrUnknownCommand, []string{`"nope"`, `"boom", "fail", "set_image"`}},
		{"set_image", `[1]`, up, engine.ErrInvalidArgs, []string{"arguments are an array; want a JSON object"}},
		{"set_image", `{"steps":`, up, engine.ErrInvalidArgs, []string{"not valid JSON"}},
		{"set_image", `{"steps":3,"prompt":"x","colour":1}`, up, engine.ErrInvalidArgs, []string{`unknown parameter "colour"`, `"image", "loop"`}},
		{"set_image", `{"prompt":"x"}`, up, engine.ErrInvalidArgs, []string{`missing required parameter "steps" (integer)`}},
		{"set_image", `{"steps":3}`, up, engine.ErrInvalidArgs, []string{`missing required parameter "prompt"`}},
		{"set_image", `{"steps":3,"prompt":"x"}`, nil, engine.ErrInvalidArgs, []string{`missing required file parameter "image"`}},
		{"set_image", `{"steps":"3","prompt":"x"}`, up, engine.ErrInvalidArgs, []string{`parameter "steps": got the string "3"; want a number`}},
		{"set_image", `{"steps":3.5,"prompt":"x"}`, up, engine.ErrInvalidArgs, []string{`parameter "steps": got 3.5; want an integer`}},
		{"set_image", `{"steps":0,"prompt":"x"}`, up, engine.ErrInvalidArgs, []string{`"steps": got 0; want at least 1`}},
		{"set_image", `{"steps":51,"prompt":"x"}`, up, engine.ErrInvalidArgs, []string{"got 51; want at most 50"}},
		{"set_image", `{"steps":3,"prompt":"x","strength":1.5}`, up, engine.ErrInvalidArgs, []string{`"strength": got 1.5; want at most 1`}},
		{"set_image", `{"steps":3,"prompt":"x","mode":"slow"}`, up, engine.ErrInvalidArgs, []string{`"mode": got "slow"; want one of fast, quality`}},
		{"set_image", `{"steps":3,"prompt":"x","loop":1}`, up, engine.ErrInvalidArgs, []string{`"loop": got the number 1; want true or false`}},
		{"set_image", `{"steps":3,"prompt":7}`, up, engine.ErrInvalidArgs, []string{`"prompt": got the number 7; want a string`}},
		{"set_image", `{"steps":3,"prompt":"x","seed":70000}`, up, engine.ErrInvalidArgs, []string{"out of range for uint16"}},
		{"set_image", `{"steps":3,"prompt":"x","seed":-1}`, up, engine.ErrInvalidArgs, []string{"want a non-negative integer"}},
		{"set_image", `{"steps":3,"prompt":"x","image":"a1b2"}`, up, engine.ErrInvalidArgs, []string{`"image" is a file; send it in uploads`}},
		{"set_image", `{"steps":3,"prompt":"x"}`, map[string]engine.Upload{"image": {}, "prompt": {}}, engine.ErrInvalidArgs, []string{`upload for parameter "prompt", which is a string`}},
		{"set_image", `{"steps":3,"prompt":"x"}`, map[string]engine.Upload{"image": {}, "other": {}}, engine.ErrInvalidArgs, []string{`upload for unknown parameter "other"`}},
	}
	for _, c := range bad {
		wantErr(t, s.Dispatch(c.name, json.RawMessage(c.args), c.uploads), c.sentinel, c.says...)
	}
	if st := s.Stats(); st.CommandsRejected != uint64(len(bad)) || st.CommandsRun != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A failing or panicking handler is contained; the session goes on.
	wantErr(t, s.Call(ctxT(t), "fail", nil, nil), nil, "model said no")
	err := s.Call(ctxT(t), "boom", json.RawMessage(`{}`), nil)
	var pe *engine.PanicError
	if !errors.As(err, &pe) || pe.Value != "kaboom" || pe.Where != "command boom" {
		t.Fatalf("panic: %v", err)
	}
	if s.ShouldStop() {
		t.Fatal("a failing command ended the session")
	}
	if st := s.Stats(); st.CommandsFailed != 2 || st.Panics != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Commands of one session are serialised: handlers never overlap.
func TestCommandsAreSerialisedPerSession(t *testing.T) {
	var running, overlaps, done int64
	finished := make(chan struct{})
	type p struct{}
	e := newEngine(t, engine.Model{Commands: []engine.CommandDef{engine.Command("c", "", func(*engine.Session, p) error {
		running++ // a data race (caught by -race) if handlers overlapped
		if running != 1 {
			overlaps++
		}
		running--
		done++
		if done == 50 {
			close(finished)
		}
		return nil
	})}})
	s := start(t, e)
	for i := 0; i < 50; i++ {
		if err := s.Dispatch("c", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	<-finished
	if overlaps != 0 {
		t.Fatal("handlers overlapped")
	}
}

func TestDispatchQueueFull(t *testing.T) {
	release := make(chan struct{})
	e := newEngine(t, engine.Model{Commands: []engine.CommandDef{engine.Command("slow", "", func(*engine.Session, struct{}) error {
		<-release
		return nil
	})}}, engine.WithCommandQueue(1))
	s := start(t, e)
	defer close(release)
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		err = s.Dispatch("slow", nil, nil)
	}
	wantErr(t, err, engine.ErrBusy, "1 commands waiting")
}

// An upload named by reference (nil Data) is resolved through the
// session's transport on the command goroutine, in queue order; a failed
// resolution rejects the command, counts it and tells the transport.
func TestDispatchResolvesUploadReferencesOnTheCommandPath(t *testing.T) {
	got := make(chan imageParams, 2)
	e := newEngine(t, engine.Model{Commands: []engine.CommandDef{
		engine.Command("set_image", "", func(_ *engine.Session, p imageParams) error { got <- p; return nil }),
	}})
	s := start(t, e)
	release := make(chan struct{})
	tr := &recordingTransport{uploads: func(ctx context.Context, id string) (engine.Upload, error) {
		if id == "missing" {
			return engine.Upload{}, errors.New(`upload "missing" is unknown`)
		}
		<-release // a PUT still in flight
		return engine.Upload{ID: id, Name: "cat.png", Size: 3, Data: []byte("png")}, nil
	}}
	s.Attach(tr)
	ref := map[string]engine.Upload{"image": {ID: "u1"}}
	if err := s.Dispatch("set_image", json.RawMessage(`{"prompt":"a","steps":1}`), ref); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		t.Fatalf("handler ran before its upload arrived: %+v", p)
	default:
	}
	close(release)
	if p := <-got; string(p.Image.Data) != "png" || p.Image.ID != "u1" || p.Prompt != "a" {
		t.Fatalf("args %+v", p)
	}
	err := s.Call(ctxT(t), "set_image", json.RawMessage(`{"prompt":"b","steps":1}`), map[string]engine.Upload{"image": {ID: "missing"}})
	wantErr(t, err, nil, `file parameter "image"`, `"missing" is unknown`)
	if r := tr.rejections(); len(r) != 1 || !strings.Contains(r[0], "set_image") || !strings.Contains(r[0], "unknown") {
		t.Fatalf("transport told %q; want one rejection of set_image", r)
	}
	if st := s.Stats(); st.CommandsRun != 1 || st.CommandsRejected != 1 {
		t.Fatalf("stats %+v; want 1 run, 1 rejected", st)
	}
	if st := e.Stats(); st.CommandsRun != 1 || st.CommandsRejected != 1 || st.SessionsStarted != 1 || st.SessionsRunning != 1 {
		t.Fatalf("engine stats %+v", st)
	}
}
