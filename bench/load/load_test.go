package load

import (
	"errors"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50}, {0.9, 90}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	var r Result
	summarize(&r, []time.Duration{3, 1, 2})
	if r.P50 != 2 || r.Max != 3 || r.Mean != 2 {
		t.Errorf("summarize = %+v", r)
	}
}

func TestKeyAndValidate(t *testing.T) {
	if k := Key(42, 8); k != "00000042" {
		t.Errorf("Key = %q", k)
	}
	ok := Config{Mode: ModePut, Clients: 1, Total: 1, Duration: time.Second, KeySize: 8, ValueSize: 256, KeySpace: 10}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Mode = "delete" },
		func(c *Config) { c.Clients = 0 },
		func(c *Config) { c.Total = 0 },
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.KeySize = 7 },
		func(c *Config) { c.KeySize = 33 },
		func(c *Config) { c.KeySpace = 0 },
	} {
		c := ok
		bad(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrConfig", c, err)
		}
	}
	if _, err := ParseModes("put,get-serializable"); err != nil {
		t.Error(err)
	}
	if _, err := ParseModes("put,nope"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseModes: %v", err)
	}
}
