package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Args is a schema command's validated arguments: every non-file
// parameter, given or defaulted, by name. Values are string, bool, int64
// or float64 after the parameter's schema type.
type Args map[string]any

// Files is a schema command's resolved uploads by parameter name; an
// optional file parameter the client left out is absent.
type Files map[string]File

// CommandFromSchema declares a command whose parameters are given at run
// time as a flat Schema instead of a Go struct: for bindings (the C ABI
// and the Python package) whose parameter types are only known once a
// model is loaded. Each Param's Type is "string", "boolean", "integer",
// "number" or "file"; Minimum/Maximum apply to numbers and Enum to
// strings; a parameter is required unless it has a Default (a "file"
// parameter is optional when Required is false). A non-file parameter that
// is not required must have a Default.
//
// Arguments are validated exactly as for Command (same checks, same error
// messages); h runs on the session's command goroutine with the
// validated, default-filled arguments and the resolved uploads. A bad
// schema is kept as the CommandDef's error, which New reports.
func CommandFromSchema(name, description string, schema Schema, h func(s *Session, args Args, files Files) error) CommandDef {
	c := CommandDef{name: name, desc: description}
	switch {
	case name == "":
		c.err = fmt.Errorf("%w: a command has an empty name", ErrInvalidModel)
	case h == nil:
		c.err = fmt.Errorf("%w: command %q has a nil handler", ErrInvalidModel, name)
	}
	if c.err != nil {
		return c
	}
	t, names, err := schemaStruct(schema)
	if err == nil {
		c.fields, c.schema, err = deriveSchema(t)
	}
	if err != nil {
		c.err = fmt.Errorf("%w: command %q: %w", ErrInvalidModel, name, err)
		return c
	}
	c.newArgs = func() reflect.Value { return reflect.New(t).Elem() }
	// The struct's fields are P0…Pn in sorted parameter order; the
	// handler gets them back by name.
	c.call = func(s *Session, v reflect.Value) error {
		args, files := Args{}, Files{}
		for i, n := range names {
			switch x := v.Field(i).Interface().(type) {
			case File:
				files[n] = x
			case *File:
				if x != nil {
					files[n] = *x
				}
			default:
				args[n] = x
			}
		}
		return h(s, args, files)
	}
	return c
}

// schemaStruct builds the struct type Command's machinery validates: one
// exported field per parameter, in sorted name order, carrying the
// parameter's name, bounds, enum, default and description as tags.
func schemaStruct(schema Schema) (reflect.Type, []string, error) {
	names := make([]string, 0, len(schema))
	for n := range schema {
		names = append(names, n)
	}
	sort.Strings(names)
	fields := make([]reflect.StructField, 0, len(names))
	for i, n := range names {
		sf, err := schemaField(i, n, schema[n])
		if err != nil {
			return nil, nil, err
		}
		fields = append(fields, sf)
	}
	return reflect.StructOf(fields), names, nil
}

var schemaTypes = map[string]reflect.Type{
	"string":  reflect.TypeFor[string](),
	"boolean": reflect.TypeFor[bool](),
	"integer": reflect.TypeFor[int64](),
	"number":  reflect.TypeFor[float64](),
}

// schemaField is parameter n (the i-th) as a tagged struct field.
func schemaField(i int, n string, p Param) (reflect.StructField, error) {
	if n == "" || strings.ContainsAny(n, "\",`") {
		return reflect.StructField{}, fmt.Errorf("parameter name %q: want a non-empty name without quotes or commas", n)
	}
	tags := []string{`json:` + strconv.Quote(n)}
	add := func(k, v string) { tags = append(tags, k+":"+strconv.Quote(v)) }
	if p.Description != "" {
		add("description", p.Description)
	}
	typ, ok := schemaTypes[p.Type]
	switch {
	case p.Type == "file" && p.Default != nil:
		return reflect.StructField{}, fmt.Errorf("parameter %q: a file parameter cannot have a default", n)
	case p.Type == "file" && p.Required:
		typ = fileType
	case p.Type == "file":
		typ = reflect.PointerTo(fileType)
	case !ok:
		return reflect.StructField{}, fmt.Errorf("parameter %q has type %q; want string, boolean, integer, number or file", n, p.Type)
	case !p.Required && p.Default == nil:
		return reflect.StructField{}, fmt.Errorf("parameter %q is optional but has no default; give it a default or make it required", n)
	}
	if p.Minimum != nil {
		add("min", strconv.FormatFloat(*p.Minimum, 'g', -1, 64))
	}
	if p.Maximum != nil {
		add("max", strconv.FormatFloat(*p.Maximum, 'g', -1, 64))
	}
	if len(p.Enum) > 0 {
		for _, e := range p.Enum {
			if strings.Contains(e, ",") {
				return reflect.StructField{}, fmt.Errorf("parameter %q: enum value %q contains a comma", n, e)
			}
		}
		add("enum", strings.Join(p.Enum, ","))
	}
	if p.Default != nil && p.Type != "file" {
		def, err := defaultTag(p)
		if err != nil {
			return reflect.StructField{}, fmt.Errorf("parameter %q: %w", n, err)
		}
		add("default", def)
	}
	return reflect.StructField{Name: "P" + strconv.Itoa(i), Type: typ, Tag: reflect.StructTag(strings.Join(tags, " "))}, nil
}

// defaultTag writes p.Default as Command's default tag reads it: a
// string as itself, anything else as JSON.
func defaultTag(p Param) (string, error) {
	if s, ok := p.Default.(string); ok && p.Type == "string" {
		return s, nil
	}
	b, err := json.Marshal(p.Default)
	if err != nil {
		return "", fmt.Errorf("default %v: %w", p.Default, err)
	}
	return string(b), nil
}
