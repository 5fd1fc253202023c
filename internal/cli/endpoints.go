package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// perEndpoint runs fn against each endpoint on its own connection,
// concurrently, and returns the results in endpoint order. When no endpoint
// answered at all it returns one *noMemberError naming them all.
func perEndpoint[T any](ctx context.Context, inv *invocation, fn func(ctx context.Context, cli *clientv3.Client, ep string) (T, error)) ([]T, []error, error) {
	eps, err := inv.g.endpointList()
	if err != nil {
		return nil, nil, err
	}
	results := make([]T, len(eps))
	errs := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli, err := inv.dial(ctx, []string{ep})
			if err != nil {
				errs[i] = err
				return
			}
			defer cli.Close()
			results[i], errs[i] = fn(ctx, cli, ep)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	all := &noMemberError{}
	for i, err := range errs {
		var nm *noMemberError
		if !errors.As(err, &nm) {
			return results, errs, nil
		}
		all.endpoints = append(all.endpoints, eps[i])
		all.reasons = append(all.reasons, nm.reasons...)
	}
	return nil, nil, all
}

// errSomeEndpointsFailed is returned by status and health when some, but not
// all, endpoints failed; the failures are in the output.
var errSomeEndpointsFailed = errors.New("some endpoints failed")

func countFailed(errs []error) error {
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d", errSomeEndpointsFailed, n, len(errs))
}

// errorText is the message of err for an output cell, or "".
func errorText(err error) string {
	if err == nil {
		return ""
	}
	var nm *noMemberError
	if errors.As(err, &nm) && len(nm.reasons) == 1 {
		return "no answer (" + nm.reasons[0] + ")"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return requestErrorText(err)
}
