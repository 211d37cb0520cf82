package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Upload is a file the client uploaded during the session, for one command
// parameter. Data must not be modified. In Session.Dispatch an Upload with
// nil Data is a reference by ID, resolved through the session's Transport
// before the handler runs.
type Upload struct {
	ID       string
	Name     string
	MimeType string
	Size     int64
	Data     []byte
}

// File is the type of a command parameter that takes an uploaded file. A
// field of type File is a required file parameter; *File is optional (nil
// when the client sent none). Data is shared with the session's upload
// store and must not be modified.
type File Upload

// Open returns a reader over the file's bytes.
func (f File) Open() *bytes.Reader { return bytes.NewReader(f.Data) }

// Param is one parameter descriptor of a command's flat schema:
// the keys the JS SDK reads to build its controls.
type Param struct {
	// Type is "number", "integer", "string", "boolean", or "file" for an
	// uploaded file (the SDK renders no control for it).
	Type        string   `json:"type"`
	Minimum     *float64 `json:"minimum,omitempty"`
	Maximum     *float64 `json:"maximum,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Description string   `json:"description,omitempty"`
	// Required is true for a parameter with no default.
	Required bool `json:"required"`
	// Default is the value used when the client omits the parameter; nil
	// for required parameters.
	Default any `json:"default,omitempty"`
}

// Schema is a command's flat parameter schema: parameter name → descriptor.
// It marshals to the JSON object the SDK expects (not JSON Schema).
type Schema map[string]Param

// CommandDef is a declared command, built by Command. It is immutable. A
// CommandDef whose parameter type cannot be described keeps the error, and
// New reports it.
type CommandDef struct {
	name, desc string
	schema     Schema
	fields     []field
	err        error
	call       func(s *Session, v reflect.Value) error
	newArgs    func() reflect.Value
}

// Name returns the command's name (the "type" of its data-channel message).
func (c CommandDef) Name() string { return c.name }

// Description returns the command's description ("" when none).
func (c CommandDef) Description() string { return c.desc }

// Schema returns a copy of the command's flat parameter schema.
func (c CommandDef) Schema() Schema {
	s := make(Schema, len(c.schema))
	for k, v := range c.schema {
		s[k] = v
	}
	return s
}

// Err returns the declaration error, if any (also reported by New).
func (c CommandDef) Err() error { return c.err }

// Command declares a command named name whose arguments are the fields of
// the struct type P. The
// schema is derived from P:
//
//   - the parameter name is the field's json tag name (or the field name);
//     fields tagged json:"-" and unexported fields are ignored;
//   - string → "string", bool → "boolean", int/uint kinds → "integer",
//     float32/float64 → "number", File / *File → "file" (an upload);
//   - tags: description:"…", min:"0", max:"1" (numbers), enum:"a,b,c"
//     (strings), default:"0.5";
//   - a parameter is required unless it has a default (or is a *File).
//
// The handler h runs on the session's command goroutine with validated,
// default-filled arguments: commands of one session run one at a time, in
// arrival order, concurrently with RunSession and OnMedia. An error or
// panic is logged and counted; the session goes on. Use struct{} for a
// command without parameters.
func Command[P any](name, description string, h func(s *Session, p P) error) CommandDef {
	c := CommandDef{name: name, desc: description}
	t := reflect.TypeFor[P]()
	switch {
	case name == "":
		c.err = fmt.Errorf("%w: a command has an empty name", ErrInvalidModel)
	case h == nil:
		c.err = fmt.Errorf("%w: command %q has a nil handler", ErrInvalidModel, name)
	case t.Kind() != reflect.Struct:
		c.err = fmt.Errorf("%w: command %q: parameters must be a struct type (struct{} for none); got %s", ErrInvalidModel, name, t)
	}
	if c.err != nil {
		return c
	}
	c.fields, c.schema, c.err = deriveSchema(t)
	if c.err != nil {
		c.err = fmt.Errorf("%w: command %q: %w", ErrInvalidModel, name, c.err)
		return c
	}
	c.newArgs = func() reflect.Value { return reflect.New(t).Elem() }
	c.call = func(s *Session, v reflect.Value) error { return h(s, v.Interface().(P)) }
	return c
}

type fieldKind uint8

const (
	kString fieldKind = iota
	kBool
	kInt
	kUint
	kFloat
	kFile
	kFilePtr
)

type field struct {
	name     string
	index    int
	kind     fieldKind
	param    Param
	def      reflect.Value // default, valid when the field has one
	enumSet  map[string]bool
	min, max *float64
}

var fileType = reflect.TypeFor[File]()

// deriveSchema describes the parameter struct t: one field per exported,
// non-skipped struct field, and the flat schema the client sees.
func deriveSchema(t reflect.Type) ([]field, Schema, error) {
	schema := Schema{}
	var fields []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, skip := paramName(sf)
		if skip {
			continue
		}
		if sf.Anonymous {
			return nil, nil, fmt.Errorf("embedded field %s is not supported; declare the parameters directly", sf.Name)
		}
		if _, dup := schema[name]; dup {
			return nil, nil, fmt.Errorf("two fields are named %q", name)
		}
		f, err := newField(sf, name, i)
		if err != nil {
			return nil, nil, err
		}
		schema[name] = f.param
		fields = append(fields, f)
	}
	return fields, schema, nil
}

// paramName is the wire name of struct field sf (its json tag, else its
// Go name); skip is true for unexported fields and json:"-".
func paramName(sf reflect.StructField) (name string, skip bool) {
	if !sf.IsExported() {
		return "", true
	}
	name = sf.Name
	if tag, ok := sf.Tag.Lookup("json"); ok {
		n, _, _ := strings.Cut(tag, ",")
		if n == "-" {
			return "", true
		}
		if n != "" {
			name = n
		}
	}
	return name, false
}

// newField describes struct field sf (index i) as parameter name: its
// type, then the description, min/max, enum and default tags.
func newField(sf reflect.StructField, name string, i int) (field, error) {
	f := field{name: name, index: i}
	if err := f.setKind(sf.Type); err != nil {
		return field{}, err
	}
	desc := sf.Tag.Get("description")
	if desc == "" {
		desc = sf.Tag.Get("desc")
	}
	f.param.Description = desc
	if err := f.parseBounds(sf.Tag); err != nil {
		return field{}, err
	}
	if err := f.parseEnum(sf.Tag); err != nil {
		return field{}, err
	}
	f.param.Required = f.kind != kFilePtr
	if v, ok := sf.Tag.Lookup("default"); ok {
		if f.kind == kFile || f.kind == kFilePtr {
			return field{}, fmt.Errorf("parameter %q: a file parameter cannot have a default", name)
		}
		dv := reflect.New(sf.Type).Elem()
		if err := f.parseDefault(v, dv); err != nil {
			return field{}, err
		}
		f.def = dv
		f.param.Required = false
		f.param.Default = dv.Interface()
	}
	return f, nil
}

// setKind maps the Go type to the parameter's kind and schema type.
func (f *field) setKind(t reflect.Type) error {
	switch {
	case t == fileType:
		f.kind, f.param.Type = kFile, "file"
		return nil
	case t.Kind() == reflect.Pointer && t.Elem() == fileType:
		f.kind, f.param.Type = kFilePtr, "file"
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		f.kind, f.param.Type = kString, "string"
	case reflect.Bool:
		f.kind, f.param.Type = kBool, "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f.kind, f.param.Type = kInt, "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f.kind, f.param.Type = kUint, "integer"
	case reflect.Float32, reflect.Float64:
		f.kind, f.param.Type = kFloat, "number"
	default:
		return fmt.Errorf("parameter %q has type %s; want string, bool, an integer or float type, engine.File or *engine.File", f.name, t)
	}
	return nil
}

// parseBounds reads the min and max tags of a numeric parameter.
func (f *field) parseBounds(tag reflect.StructTag) error {
	numeric := f.kind == kInt || f.kind == kUint || f.kind == kFloat
	for _, key := range []string{"min", "max"} {
		v, ok := tag.Lookup(key)
		if !ok {
			continue
		}
		if !numeric {
			return fmt.Errorf("parameter %q: %s:%q applies to numbers only, not %s", f.name, key, v, f.param.Type)
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("parameter %q: %s:%q is not a finite number", f.name, key, v)
		}
		if key == "min" {
			f.min, f.param.Minimum = &x, &x
		} else {
			f.max, f.param.Maximum = &x, &x
		}
	}
	if f.min != nil && f.max != nil && *f.min > *f.max {
		return fmt.Errorf("parameter %q: min %v is greater than max %v", f.name, *f.min, *f.max)
	}
	return nil
}

// parseEnum reads the enum tag of a string parameter.
func (f *field) parseEnum(tag reflect.StructTag) error {
	v, ok := tag.Lookup("enum")
	if !ok {
		return nil
	}
	if f.kind != kString {
		return fmt.Errorf("parameter %q: enum applies to strings only, not %s", f.name, f.param.Type)
	}
	f.enumSet = map[string]bool{}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			return fmt.Errorf("parameter %q: enum:%q has an empty value", f.name, v)
		}
		f.enumSet[e] = true
		f.param.Enum = append(f.param.Enum, e)
	}
	return nil
}

func (f *field) parseDefault(s string, dv reflect.Value) error {
	var raw json.RawMessage
	if f.kind == kString {
		b, _ := json.Marshal(s)
		raw = b
	} else {
		raw = json.RawMessage(strings.TrimSpace(s))
	}
	if err := f.set(dv, raw); err != nil {
		return fmt.Errorf("parameter %q: default:%q: %w", f.name, s, err)
	}
	return nil
}

// set decodes raw into v, checking type, range and enum. The error says
// what was wrong and what was expected (without the parameter's name).
func (f *field) set(v reflect.Value, raw json.RawMessage) error {
	switch f.kind {
	case kString:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("got %s; want a string", describe(raw))
		}
		if f.enumSet != nil && !f.enumSet[s] {
			return fmt.Errorf("got %q; want one of %s", s, strings.Join(f.param.Enum, ", "))
		}
		v.SetString(s)
	case kBool:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("got %s; want true or false", describe(raw))
		}
		v.SetBool(b)
	case kInt, kUint, kFloat:
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil || !isJSONNumber(raw) {
			return fmt.Errorf("got %s; want a number", describe(raw))
		}
		x, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return fmt.Errorf("got %s; want a number", n)
		}
		if f.min != nil && x < *f.min {
			return fmt.Errorf("got %s; want at least %v", n, *f.min)
		}
		if f.max != nil && x > *f.max {
			return fmt.Errorf("got %s; want at most %v", n, *f.max)
		}
		switch f.kind {
		case kFloat:
			if v.OverflowFloat(x) {
				return fmt.Errorf("got %s; out of range for %s", n, v.Type())
			}
			v.SetFloat(x)
		case kInt:
			i, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
					return fmt.Errorf("got %s; want an integer", n)
				}
				i = int64(x)
			}
			if v.OverflowInt(i) {
				return fmt.Errorf("got %s; out of range for %s", n, v.Type())
			}
			v.SetInt(i)
		case kUint:
			u, err := strconv.ParseUint(string(n), 10, 64)
			if err != nil {
				if x != math.Trunc(x) || x < 0 || x >= math.MaxUint64 {
					return fmt.Errorf("got %s; want a non-negative integer", n)
				}
				u = uint64(x)
			}
			if v.OverflowUint(u) {
				return fmt.Errorf("got %s; out of range for %s", n, v.Type())
			}
			v.SetUint(u)
		}
	default:
		return fmt.Errorf("is a file parameter; send it as an upload")
	}
	return nil
}

func isJSONNumber(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

// describe names a JSON value's type for error messages.
func describe(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		if len(raw) > 40 {
			return "a string"
		}
		return "the string " + string(raw)
	case 't', 'f':
		return "a boolean"
	case '[':
		return "an array"
	case '{':
		return "an object"
	case 'n':
		return "null"
	}
	return "the number " + string(raw)
}

// prepare validates args (a JSON object, or empty) and uploads against the
// command's schema and returns the step the command goroutine runs: it
// resolves upload references, then returns the handler call.
func (c *CommandDef) prepare(s *Session, args json.RawMessage, uploads map[string]Upload) (func(context.Context) (func() error, error), error) {
	obj, err := c.parseArgs(args, uploads)
	if err != nil {
		return nil, err
	}
	v := c.newArgs()
	var files []*field
	for i := range c.fields {
		f := &c.fields[i]
		if f.kind == kFile || f.kind == kFilePtr {
			if err := c.checkFile(f, obj, uploads); err != nil {
				return nil, err
			}
			files = append(files, f)
			continue
		}
		if err := c.setParam(f, v.Field(f.index), obj, uploads); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) (func() error, error) {
		for _, f := range files {
			u, ok := uploads[f.name]
			if !ok {
				continue
			}
			u, err := s.resolveUpload(ctx, f.name, u)
			if err != nil {
				return nil, err
			}
			file := File(u)
			if f.kind == kFile {
				v.Field(f.index).Set(reflect.ValueOf(file))
			} else {
				v.Field(f.index).Set(reflect.ValueOf(&file))
			}
		}
		return func() error { return c.call(s, v) }, nil
	}, nil
}

func (c *CommandDef) bad(format string, a ...any) error {
	return fmt.Errorf("%w: command %q: %s", ErrInvalidArgs, c.name, fmt.Sprintf(format, a...))
}

// parseArgs decodes args into parameter name → raw value and checks that
// every argument and upload names a parameter.
func (c *CommandDef) parseArgs(args json.RawMessage, uploads map[string]Upload) (map[string]json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if t := bytes.TrimSpace(args); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		if t[0] != '{' {
			return nil, c.bad("arguments are %s; want a JSON object of parameters", describe(t))
		}
		if err := json.Unmarshal(t, &obj); err != nil {
			return nil, c.bad("arguments are not valid JSON: %v", err)
		}
	}
	for k := range obj {
		if !c.has(k) {
			return nil, c.bad("unknown parameter %q; it takes %s", k, c.paramList())
		}
	}
	for k := range uploads {
		if !c.has(k) {
			return nil, c.bad("upload for unknown parameter %q; it takes %s", k, c.paramList())
		}
	}
	return obj, nil
}

// checkFile validates file parameter f: given as an upload, not as an
// argument, and present when required.
func (c *CommandDef) checkFile(f *field, obj map[string]json.RawMessage, uploads map[string]Upload) error {
	if _, inArgs := obj[f.name]; inArgs {
		return c.bad("parameter %q is a file; send it in uploads, not in the arguments", f.name)
	}
	if _, ok := uploads[f.name]; !ok && f.kind == kFile {
		return c.bad("missing required file parameter %q: it needs an upload (upload the file, then name it under the command's uploads)", f.name)
	}
	return nil
}

// setParam sets the non-file parameter f from its argument or default.
func (c *CommandDef) setParam(f *field, fv reflect.Value, obj map[string]json.RawMessage, uploads map[string]Upload) error {
	if _, ok := uploads[f.name]; ok {
		return c.bad("upload for parameter %q, which is a %s, not a file", f.name, f.param.Type)
	}
	raw, ok := obj[f.name]
	if ok && bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		ok = false // null counts as absent
	}
	if !ok {
		if !f.def.IsValid() {
			return c.bad("missing required parameter %q (%s)", f.name, f.param.Type)
		}
		fv.Set(f.def)
		return nil
	}
	if err := f.set(fv, raw); err != nil {
		return c.bad("parameter %q: %v", f.name, err)
	}
	return nil
}

func (c *CommandDef) has(name string) bool {
	_, ok := c.schema[name]
	return ok
}

func (c *CommandDef) paramList() string {
	if len(c.schema) == 0 {
		return "no parameters"
	}
	names := make([]string, 0, len(c.schema))
	for n := range c.schema {
		names = append(names, strconv.Quote(n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
