package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// printer writes results in one of the output formats (table, json, value).
type printer struct {
	w      io.Writer
	format string
}

// JSON shapes: etcd's field names (snake_case, as in the proto files), with
// keys and values as strings instead of base64. Bytes that are not valid
// UTF-8 become U+FFFD; use -o value for binary values.
type (
	jsonHeader struct {
		ClusterID uint64 `json:"cluster_id"`
		MemberID  uint64 `json:"member_id"`
		Revision  int64  `json:"revision"`
		RaftTerm  uint64 `json:"raft_term"`
	}
	jsonKV struct {
		Key            string  `json:"key"`
		CreateRevision int64   `json:"create_revision"`
		ModRevision    int64   `json:"mod_revision"`
		Version        int64   `json:"version"`
		Value          *string `json:"value,omitempty"` // absent with --keys-only
		Lease          int64   `json:"lease"`
	}
	jsonRange struct {
		Header *jsonHeader `json:"header,omitempty"`
		KVs    []jsonKV    `json:"kvs"`
		More   bool        `json:"more"`
		Count  int64       `json:"count"`
	}
	jsonPut struct {
		Header *jsonHeader `json:"header,omitempty"`
		PrevKV *jsonKV     `json:"prev_kv,omitempty"`
	}
	jsonDelete struct {
		Header  *jsonHeader `json:"header,omitempty"`
		Deleted int64       `json:"deleted"`
		PrevKVs []jsonKV    `json:"prev_kvs,omitempty"`
	}
	jsonResponseOp struct {
		Range  *jsonRange  `json:"response_range,omitempty"`
		Put    *jsonPut    `json:"response_put,omitempty"`
		Delete *jsonDelete `json:"response_delete_range,omitempty"`
	}
	jsonTxn struct {
		Header    *jsonHeader      `json:"header,omitempty"`
		Succeeded bool             `json:"succeeded"`
		Responses []jsonResponseOp `json:"responses"`
	}
)

func toJSONHeader(h *pb.ResponseHeader) *jsonHeader {
	if h == nil {
		return nil
	}
	return &jsonHeader{ClusterID: h.ClusterId, MemberID: h.MemberId, Revision: h.Revision, RaftTerm: h.RaftTerm}
}

func toJSONKV(kv *mvccpb.KeyValue, keysOnly bool) jsonKV {
	j := jsonKV{Key: string(kv.Key), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
	if !keysOnly {
		v := string(kv.Value)
		j.Value = &v
	}
	return j
}

func toJSONKVs(kvs []*mvccpb.KeyValue, keysOnly bool) []jsonKV {
	out := make([]jsonKV, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, toJSONKV(kv, keysOnly))
	}
	return out
}

func toJSONRange(r *pb.RangeResponse, keysOnly bool, header bool) *jsonRange {
	j := &jsonRange{KVs: toJSONKVs(r.Kvs, keysOnly), More: r.More, Count: r.Count}
	if header {
		j.Header = toJSONHeader(r.Header)
	}
	return j
}

func toJSONPut(r *pb.PutResponse, header bool) *jsonPut {
	j := &jsonPut{}
	if r.PrevKv != nil {
		kv := toJSONKV(r.PrevKv, false)
		j.PrevKV = &kv
	}
	if header {
		j.Header = toJSONHeader(r.Header)
	}
	return j
}

func toJSONDelete(r *pb.DeleteRangeResponse, header bool) *jsonDelete {
	j := &jsonDelete{Deleted: r.Deleted}
	if len(r.PrevKvs) > 0 {
		j.PrevKVs = toJSONKVs(r.PrevKvs, false)
	}
	if header {
		j.Header = toJSONHeader(r.Header)
	}
	return j
}

// json writes v as one line of JSON.
func (p printer) json(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// display makes a key or value safe for a table cell: strings that are empty,
// not valid UTF-8, contain control or non-printable characters, have leading
// or trailing spaces or start with a quote are shown Go-quoted.
func display(s string) string {
	if s == "" || !utf8.ValidString(s) || strings.TrimSpace(s) != s || s[0] == '"' {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// table writes rows as aligned columns; the first row is the header.
func (p printer) table(rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(p.w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// kvTable writes KEY VALUE rows (KEY only with keysOnly), header included.
func (p printer) kvTable(kvs []*mvccpb.KeyValue, keysOnly bool) error {
	rows := [][]string{{"KEY", "VALUE"}}
	if keysOnly {
		rows[0] = rows[0][:1]
	}
	for _, kv := range kvs {
		if keysOnly {
			rows = append(rows, []string{display(string(kv.Key))})
		} else {
			rows = append(rows, []string{display(string(kv.Key)), display(string(kv.Value))})
		}
	}
	return p.table(rows)
}

// lines writes each string followed by a newline, verbatim.
func (p printer) lines(ss ...string) error {
	for _, s := range ss {
		if _, err := io.WriteString(p.w, s+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func (p printer) get(r *clientv3.GetResponse, o *getOptions) error {
	switch p.format {
	case outputJSON:
		return p.json(toJSONRange((*pb.RangeResponse)(r), o.keysOnly, true))
	case outputValue:
		if o.countOnly {
			return p.lines(strconv.FormatInt(r.Count, 10))
		}
		for _, kv := range r.Kvs {
			s := string(kv.Value)
			if o.keysOnly {
				s = string(kv.Key)
			}
			if err := p.lines(s); err != nil {
				return err
			}
		}
		return nil
	default:
		if o.countOnly {
			return p.lines(strconv.FormatInt(r.Count, 10))
		}
		return p.kvTable(r.Kvs, o.keysOnly)
	}
}

func (p printer) put(r *clientv3.PutResponse, o *putOptions) error {
	switch p.format {
	case outputJSON:
		return p.json(toJSONPut((*pb.PutResponse)(r), true))
	case outputValue:
		if r.PrevKv != nil {
			return p.lines(string(r.PrevKv.Value))
		}
		return nil
	default:
		if err := p.lines("OK"); err != nil {
			return err
		}
		if o.prevKV && r.PrevKv != nil {
			return p.kvTable([]*mvccpb.KeyValue{r.PrevKv}, false)
		}
		return nil
	}
}

// jsonSequential is `put --sequential` in -o json: the key created and the
// revision that created it.
type jsonSequential struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"`
}

// putSequential prints the key `put --sequential` created: the key in table
// (quoted as display quotes) and value (raw), {"key":...,"revision":...} in
// json.
func (p printer) putSequential(key string, rev int64) error {
	switch p.format {
	case outputJSON:
		return p.json(jsonSequential{Key: key, Revision: rev})
	case outputValue:
		return p.lines(key)
	default:
		return p.lines(display(key))
	}
}

func (p printer) del(r *clientv3.DeleteResponse, o *delOptions) error {
	switch p.format {
	case outputJSON:
		return p.json(toJSONDelete((*pb.DeleteRangeResponse)(r), true))
	default:
		if err := p.lines(strconv.FormatInt(r.Deleted, 10)); err != nil {
			return err
		}
		if o.prevKV && len(r.PrevKvs) > 0 && p.format == outputTable {
			return p.kvTable(r.PrevKvs, false)
		}
		return nil
	}
}
