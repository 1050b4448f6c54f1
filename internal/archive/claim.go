package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/s3err"
)

// Copies of one job that run at once (a duplicate delivery, a replayed
// execution) must not both download and store the export: each stored
// version would be a second archive of the same job. Before it opens the
// export, a copy claims the job by writing <key>.claim with If-None-Match:
// *; exactly one such write succeeds. The others wait for the holder's
// manifest and answer with its archive (Reused). The claim is a lease: the
// holder renews it while it copies and deletes it when done, whatever the
// outcome, so a failed holder hands over at once; the claim of a holder
// that crashed lapses after ClaimLease, and the next copy takes it over
// with If-Match on the lapsed version, so that again only one copy wins.

// DefaultClaimLease is how long a claim holds without being renewed: the
// longest a crashed copy delays the next one.
const DefaultClaimLease = 20 * time.Second

// ClaimSuffix ends the key of a copy's claim: <key>.claim, beside the
// archive, present only while a copy runs.
const ClaimSuffix = ".claim"

// errClaimLost ends a copy whose claim another copy took over (it could
// not renew it in time): that copy now archives the job.
var errClaimLost = errors.New("another copy took over this job's claim; it archives the export")

// claimRecord is the body of a claim object.
type claimRecord struct {
	Owner     string    `json:"owner"` // random, per copy
	ExpiresAt time.Time `json:"expiresAt"`
}

// step is what a copy does next, once it has looked at the bucket.
type step int

const (
	stepReuse    step = iota // the archive is complete: answer with it
	stepClaim                // nobody holds the job: claim it
	stepTakeOver             // the holder's claim has lapsed: take it over
	stepWait                 // another copy holds the job: wait for its archive
)

// next decides a copy's step from what it found: whether the archive is
// complete, and the claim (nil when there is none).
func next(archived bool, c *claimRecord, now time.Time) step {
	switch {
	case archived:
		return stepReuse
	case c == nil:
		return stepClaim
	case now.After(c.ExpiresAt):
		return stepTakeOver
	}
	return stepWait
}

// claim is a claim this copy holds. Once keep has started, only its
// goroutine touches rec and etag until release has stopped it.
type claim struct {
	s    *Store
	key  string // the claim object's key
	rec  claimRecord
	etag string
	stop chan struct{}
	done chan struct{}
}

// acquire returns once the archive of req exists (res, with Reused set) or
// this copy holds the job's claim (c). While another copy holds it, it
// waits, looking every claimPoll, until ctx ends.
func (s *Store) acquire(ctx context.Context, req Request, key, mkey string) (res Result, c *claim, err error) {
	ckey := key + ClaimSuffix
	for {
		res, ok, err := s.existing(ctx, req, key, mkey)
		if err != nil {
			return Result{}, nil, fmt.Errorf("look for an earlier archive: %w", err)
		}
		var held *claimRecord
		var etag string
		if !ok {
			if held, etag, err = s.readClaim(ctx, ckey); err != nil {
				return Result{}, nil, err
			}
		}
		switch next(ok, held, s.cfg.Now()) {
		case stepReuse:
			return res, nil, nil
		case stepClaim:
			c, err = s.putClaim(ctx, ckey, nil)
		case stepTakeOver:
			c, err = s.putClaim(ctx, ckey, &etag)
		}
		if err != nil {
			return Result{}, nil, err
		}
		if c != nil {
			// An archive completed between the look and the claim is
			// not copied again.
			res, ok, err := s.existing(ctx, req, key, mkey)
			if err != nil || ok {
				c.release(ctx)
				if err != nil {
					return Result{}, nil, fmt.Errorf("look for an earlier archive: %w", err)
				}
				return res, nil, nil
			}
			return Result{}, c, nil
		}
		select {
		case <-ctx.Done():
			return Result{}, nil, fmt.Errorf("another copy of this job holds its claim %s and has not finished: %w", ckey, context.Cause(ctx))
		case <-time.After(s.claimPoll()):
		}
	}
}

// claimPoll is how often a waiting copy looks for the holder's archive.
func (s *Store) claimPoll() time.Duration { return min(time.Second, s.cfg.ClaimLease/4) }

// readClaim returns the claim at ckey and its ETag; nil when there is none.
// A claim that does not parse is treated as lapsed, so that it is taken over.
func (s *Store) readClaim(ctx context.Context, ckey string) (*claimRecord, string, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &ckey})
	if s3err.NotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the claim %s: %w", ckey, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, 4096))
	if err != nil {
		return nil, "", fmt.Errorf("read the claim %s: %w", ckey, err)
	}
	var rec claimRecord
	if json.Unmarshal(data, &rec) != nil {
		rec = claimRecord{}
	}
	return &rec, deref(out.ETag), nil
}

// putClaim writes a new claim at ckey: with If-None-Match: * when lapsed
// is nil, else with If-Match on the lapsed claim's ETag. It returns nil
// without an error when another copy was first.
func (s *Store) putClaim(ctx context.Context, ckey string, lapsed *string) (*claim, error) {
	owner := make([]byte, 16)
	rand.Read(owner)
	c := &claim{s: s, key: ckey, rec: claimRecord{Owner: hex.EncodeToString(owner)}}
	etag, err := c.write(ctx, lapsed)
	switch {
	case s3err.PreconditionFailed(err) || lapsed != nil && s3err.Code(err) == "NoSuchKey":
		return nil, nil // another copy was first, or the lapsed claim is gone
	case err != nil:
		return nil, fmt.Errorf("claim %s: %w", ckey, err)
	}
	c.etag = etag
	return c, nil
}

// write puts the claim with a fresh expiry, conditional on ifMatch (the
// version it replaces) or, when nil, on there being none.
func (c *claim) write(ctx context.Context, ifMatch *string) (string, error) {
	rec := c.rec
	rec.ExpiresAt = c.s.cfg.Now().Add(c.s.cfg.ClaimLease).UTC()
	data, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	in := &s3.PutObjectInput{
		Bucket:        &c.s.cfg.Bucket,
		Key:           &c.key,
		Body:          bytes.NewReader(data),
		ContentLength: ptr(int64(len(data))),
		ContentType:   ptr("application/json"),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = c.s.sse()
	if ifMatch != nil {
		in.IfMatch = ifMatch
	} else {
		in.IfNoneMatch = ptr("*")
	}
	out, err := c.s.api.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	c.rec = rec
	return deref(out.ETag), nil
}

// keep renews the claim every quarter of the lease until release. When it
// cannot (another copy took the claim over, or S3 refused every renewal
// until the lease ran out) it calls lost, which stops the copy.
func (c *claim) keep(ctx context.Context, lost func(error)) {
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.s.cfg.ClaimLease / 4)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			etag, err := c.write(ctx, &c.etag)
			if err == nil {
				c.etag = etag
				continue
			}
			if s3err.PreconditionFailed(err) || s3err.NotFound(err) || c.s.cfg.Now().After(c.rec.ExpiresAt) {
				lost(errClaimLost)
				return
			}
		}
	}()
}

// release stops the renewal and deletes the claim, if it is still this
// copy's, with a context of its own: a failed or cancelled copy hands the
// job over at once. A failed delete only delays the next copy until the
// lease lapses.
func (c *claim) release(ctx context.Context) {
	if c.stop != nil {
		close(c.stop)
		<-c.done
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	c.s.api.DeleteObject(rctx, &s3.DeleteObjectInput{Bucket: &c.s.cfg.Bucket, Key: &c.key, IfMatch: &c.etag})
}
