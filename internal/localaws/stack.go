package localaws

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// StackOptions configure StartStack. Moto.LambdaPort is set by the stack.
type StackOptions struct {
	Moto   MotoOptions
	Lambda LambdaOptions
}

// Stack is moto plus a LambdaEndpoint in front of it: moto's Step Functions send Lambda
// invocations (and aws-sdk integrations) to the endpoint, and the endpoint passes every
// non-Lambda request to moto. Point SDK clients at Endpoint.
type Stack struct {
	Moto   *Moto
	Lambda *LambdaEndpoint

	stopOnce sync.Once
	stopErr  error
}

// StartStack starts the endpoint on a free port (or opts.Lambda.Addr), then moto with
// MOTO_PORT set to that port. Both stop on Stop or when ctx ends (e.g. a context from
// signal.NotifyContext, for Ctrl-C).
func StartStack(ctx context.Context, opts StackOptions) (*Stack, error) {
	if opts.Lambda.Region == "" {
		opts.Lambda.Region = opts.Moto.Region
	}
	if opts.Moto.Region == "" {
		opts.Moto.Region = opts.Lambda.Region
	}
	ep := NewLambdaEndpoint(opts.Lambda)
	if err := ep.Start(ctx); err != nil {
		return nil, err
	}
	opts.Moto.LambdaPort = ep.Port()
	m, err := StartMoto(ctx, opts.Moto)
	if err != nil {
		_ = ep.Close()
		return nil, err
	}
	if err := ep.SetUpstream(m.Endpoint()); err != nil {
		_ = ep.Close()
		_ = m.Stop()
		return nil, err
	}
	return &Stack{Moto: m, Lambda: ep}, nil
}

// Endpoint is the base URL for all AWS clients (the Lambda endpoint, which passes
// everything else to moto).
func (s *Stack) Endpoint() string { return s.Lambda.URL() }

// AWSConfig is NewAWSConfig for the stack's endpoint and region.
func (s *Stack) AWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := NewAWSConfig(ctx, s.Endpoint())
	if err != nil {
		return aws.Config{}, err
	}
	cfg.Region = s.Moto.Region()
	return cfg, nil
}

// Stop stops the endpoint (and all function processes) and moto. It is idempotent and safe
// to call concurrently, e.g. from a signal handler and a deferred call.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		errE := s.Lambda.Close()
		errM := s.Moto.Stop()
		if err := errors.Join(errE, errM); err != nil {
			s.stopErr = fmt.Errorf("localaws: stop stack: %w", err)
		}
	})
	return s.stopErr
}
