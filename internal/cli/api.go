package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// apiClient calls the stack's REST API, each request signed with SigV4
// for execute-api.
type apiClient struct {
	base   string // ends with the stage, no slash
	region string
	creds  aws.CredentialsProvider
	signer *v4.Signer
	http   *http.Client
}

// APIError is an answer of the API other than 2xx: {"error","message"}.
type APIError struct {
	Status  int
	Kind    string `json:"error"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("the API answered %d %s: %s", e.Status, e.Kind, e.Message)
}

// apiRegion reads the region from an execute-api host name: a signature
// for any other region is refused.
var apiRegion = regexp.MustCompile(`\.execute-api\.([a-z0-9-]+)\.amazonaws\.com`)

func (a *app) client(ctx context.Context) (*apiClient, error) {
	if a.api != nil {
		return a.api, nil
	}
	base := a.opts.api
	if base == "" {
		var err error
		if base, err = a.locate(ctx, envAPI, "ApiUrl"); err != nil {
			return nil, err
		}
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, usageErrorf("API URL %q is not an http(s) URL", base)
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if m := apiRegion.FindStringSubmatch(base); m != nil {
		region = m[1]
	}
	if region == "" {
		return nil, fmt.Errorf("no AWS region: set AWS_REGION or a profile's region")
	}
	a.api = &apiClient{base: strings.TrimSuffix(base, "/"), region: region, creds: cfg.Credentials,
		signer: v4.NewSigner(), http: &http.Client{Timeout: time.Minute}}
	return a.api, nil
}

// do sends a signed request; body (when not nil) is sent as JSON, and a
// 2xx answer is decoded into out.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.creds == nil {
		return fmt.Errorf("no AWS credentials found (environment, profile, SSO or instance role)")
	}
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(payload)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.region, time.Now()); err != nil {
		return fmt.Errorf("signing the request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || (e.Kind == "" && e.Message == "") {
			e.Kind, e.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// dsPath is the API path of a data source.
func dsPath(id dsID) string {
	return "/datasources/" + url.PathEscape(id.AccessID) + "/" + url.PathEscape(id.Name)
}
