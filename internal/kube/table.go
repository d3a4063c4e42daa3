package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// TableAccept asks the API server for the printed table of pods instead of the pods themselves:
// a row's name and status are all the pick needs (owner and node come from the read-back of
// the one victim), at a few percent of the bytes.
const TableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

// decodeTable reads a meta.k8s.io/v1 Table of pods from r one row at a time, so a page of any
// size costs one row's memory. It calls each with the name of every pod not printed as
// Terminating and returns the table's continue token. The API server writes columnDefinitions
// before rows (the field order of metav1.Table), which is what lets rows be read as they come.
func decodeTable(r io.Reader, each func(name string)) (next string, err error) {
	return readTable(r, tableReader{nameCol: -1, statusCol: -1, each: each})
}

// decodeNames reads a meta.k8s.io/v1 Table as decodeTable does, but calls each with the name
// of every row, whatever its Status (a namespace's: Active or Terminating).
func decodeNames(r io.Reader, each func(name string)) (next string, err error) {
	return readTable(r, tableReader{nameCol: -1, statusCol: -1, each: each, everyRow: true})
}

// readTable reads the table of r with t.
func readTable(r io.Reader, t tableReader) (next string, err error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return "", err
	}
	t.dec = dec
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", err
		}
		if err := t.field(key); err != nil {
			return "", err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return "", err
	}
	// A proxy that drops the Accept header gets a PodList, whose items this decoder would skip:
	// that must be an error, not a namespace with no candidates.
	if t.kind != "Table" || t.nameCol < 0 {
		return "", fmt.Errorf("the API server's answer is not a %s Table: got kind %q (does a proxy between macaque and the API server drop the Accept header?)", t.noun(), t.kind)
	}
	return t.next, nil
}

// tableReader is what decodeTable has read of a table so far.
type tableReader struct {
	dec                *json.Decoder
	kind, next         string
	nameCol, statusCol int // -1 until the column definitions are read
	each               func(name string)
	everyRow           bool // call each for Terminating and Unknown rows too
}

// field reads the value of the table's field key.
func (t *tableReader) field(key json.Token) error {
	switch key {
	case "kind":
		if err := t.dec.Decode(&t.kind); err != nil {
			return fmt.Errorf("kind: %w", err)
		}
	case "metadata":
		var meta struct {
			Continue string `json:"continue"`
		}
		if err := t.dec.Decode(&meta); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		t.next = meta.Continue
	case "columnDefinitions":
		return t.columns()
	case "rows":
		return decodeRows(t.dec, t.nameCol, t.statusCol, t.everyRow, t.each)
	default:
		var skip json.RawMessage
		if err := t.dec.Decode(&skip); err != nil {
			return fmt.Errorf("%v: %w", key, err)
		}
	}
	return nil
}

// columns reads the column definitions and finds the Name and Status columns.
func (t *tableReader) columns() error {
	var cols []struct {
		Name string `json:"name"`
	}
	if err := t.dec.Decode(&cols); err != nil {
		return fmt.Errorf("columnDefinitions: %w", err)
	}
	for i, c := range cols {
		switch c.Name {
		case "Name":
			t.nameCol = i
		case "Status":
			t.statusCol = i
		}
	}
	if t.nameCol < 0 || t.statusCol < 0 {
		return fmt.Errorf("no Name or Status column among %d columns", len(cols))
	}
	return nil
}

// noun is what the table lists, as its errors name it.
func (t *tableReader) noun() string {
	if t.everyRow {
		return "namespace"
	}
	return "pod"
}

// decodeRows reads the rows array (or null) of a pod table, reusing one row's buffers.
func decodeRows(dec *json.Decoder, nameCol, statusCol int, everyRow bool, each func(name string)) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("rows: %w", err)
	}
	if tok == nil { // an empty table may print its rows as null
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("rows: got %v, want an array", tok)
	}
	if dec.More() && nameCol < 0 { // columnDefinitions, once read, has set both columns or failed
		return errors.New("rows come before the column definitions")
	}
	var row struct {
		Cells []json.RawMessage `json:"cells"`
	}
	for dec.More() {
		row.Cells = row.Cells[:0]
		if err := dec.Decode(&row); err != nil {
			return fmt.Errorf("row: %w", err)
		}
		if len(row.Cells) <= max(nameCol, statusCol) {
			return fmt.Errorf("row has %d cells, want more than %d", len(row.Cells), max(nameCol, statusCol))
		}
		status, err := stringCell(row.Cells[statusCol])
		if err != nil {
			return fmt.Errorf("pod status: %w", err)
		}
		// A pod with a deletionTimestamp is printed as Terminating whatever its phase, or as
		// Unknown when its node is unreachable: either way it is already going away.
		if !everyRow && (status == "Terminating" || status == "Unknown") {
			continue
		}
		name, err := stringCell(row.Cells[nameCol])
		if err != nil {
			return fmt.Errorf("pod name: %w", err)
		}
		each(name)
	}
	return expectDelim(dec, ']')
}

// stringCell decodes a cell that must be a string. A JSON null would decode into a string as
// "no change", so it is refused rather than read as the previous row's value.
func stringCell(cell json.RawMessage) (string, error) {
	var s *string
	if err := json.Unmarshal(cell, &s); err != nil {
		return "", err
	}
	if s == nil {
		return "", errors.New("null cell")
	}
	return *s, nil
}

// expectDelim reads the next token and fails unless it is want.
func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("got %v, want %v", tok, want)
	}
	return nil
}
