package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Pipeline runs through MCP.
const (
	maxRunDocuments = 100 // document_ids of one run_pipeline call
	maxWaitSeconds  = 60
	waitInterval    = 200 * time.Millisecond
)

type pipelineStepOut struct {
	Name   string            `json:"name"`
	Plugin string            `json:"plugin"`
	Input  string            `json:"input" jsonschema:"document (the pipeline's input) or the step whose outputs this step reads"`
	Accept []string          `json:"accept" jsonschema:"content types the step takes (empty: all)"`
	Params map[string]string `json:"params"`
	// RetryTimeout: a timeout of this step is retried (transient).
	RetryTimeout bool `json:"retry_timeout" jsonschema:"true: a timeout of this step is retried up to max_attempts; false: it fails the job at once"`
}

type pipelineOut struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Version     int               `json:"version"`
	MaxAttempts int               `json:"max_attempts" jsonschema:"attempts of a job before it fails (1: no retries)"`
	MaxDerived  int               `json:"max_derived" jsonschema:"the most documents one job may derive, all steps together"`
	Steps       []pipelineStepOut `json:"steps"`
	Baskets     []string          `json:"baskets" jsonschema:"ids of baskets whose new documents run this pipeline"`
}

type listPipelinesOut struct {
	Pipelines []pipelineOut `json:"pipelines"`
}

type runPipelineIn struct {
	Pipeline    string   `json:"pipeline" jsonschema:"pipeline name (see list_pipelines)"`
	DocumentIDs []string `json:"document_ids,omitempty" jsonschema:"the documents to process (give this or basket)"`
	Basket      string   `json:"basket,omitempty" jsonschema:"a basket name or id: process every original document in it, not those derived by steps (give this or document_ids)"`
	WaitSeconds int      `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds for the jobs to finish (default 0: return at once; then poll get_job)"`
}

type failedJobOut struct {
	JobID      string `json:"job_id"`
	DocumentID string `json:"document_id"`
	Step       string `json:"step" jsonschema:"the failed step (empty when not known)"`
	ErrorCode  string `json:"error_code"`
	Error      string `json:"error"`
}

type jobsStatusOut struct {
	Total     int            `json:"total"`
	Succeeded int            `json:"succeeded"`
	Failed    int            `json:"failed"`
	Cancelled int            `json:"cancelled"`
	Pending   int            `json:"pending" jsonschema:"jobs queued or running"`
	Done      bool           `json:"done" jsonschema:"every job is final"`
	Failures  []failedJobOut `json:"failures"`
}

type runPipelineOut struct {
	JobIDs []string      `json:"job_ids" jsonschema:"one job per document, in the order of the documents"`
	Status jobsStatusOut `json:"status"`
}

type jobStepOut struct {
	Step    string   `json:"step"`
	InputID string   `json:"input_id" jsonschema:"the document the step ran on"`
	Outcome string   `json:"outcome"`
	Outputs []string `json:"outputs" jsonschema:"ids of the documents the step produced"`
}

type jobOut struct {
	ID          string       `json:"id"`
	Pipeline    string       `json:"pipeline"`
	Version     int          `json:"version"`
	DocumentID  string       `json:"document_id"`
	State       string       `json:"state" jsonschema:"queued, running, succeeded, failed or cancelled"`
	Attempts    int          `json:"attempts"`
	MaxAttempts int          `json:"max_attempts"`
	ErrorCode   string       `json:"error_code" jsonschema:"the code of the last error (empty when none)"`
	Error       string       `json:"error" jsonschema:"the last error (empty when none)"`
	Steps       []jobStepOut `json:"steps" jsonschema:"completed steps and the documents they produced"`
	Outputs     []string     `json:"outputs" jsonschema:"ids of every document the job produced (read them with read_document)"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

func statusOf(st engine.JobsStatus) jobsStatusOut {
	out := jobsStatusOut{Total: st.Total, Succeeded: st.Succeeded, Failed: st.Failed, Cancelled: st.Cancelled,
		Pending: st.Pending, Done: st.Done(), Failures: make([]failedJobOut, len(st.Failures))}
	for i, f := range st.Failures {
		out.Failures[i] = failedJobOut{JobID: f.JobID, DocumentID: f.DocumentID, Step: f.Step, ErrorCode: f.ErrorCode, Error: f.Error}
	}
	return out
}

func (s *Server) addPipelineTools() {
	addTool(s, &mcp.Tool{Name: "list_pipelines", Description: "List the pipelines (named sequences of plugin steps) this tenant can run with run_pipeline.",
		Annotations: readOnly("List pipelines")}, nil,
		func(ctx context.Context, _ struct{}) (*mcp.CallToolResult, listPipelinesOut, error) {
			ps, err := s.s.Pipelines(ctx)
			if err != nil {
				return nil, listPipelinesOut{}, err
			}
			out := listPipelinesOut{Pipelines: make([]pipelineOut, len(ps))}
			for i, p := range ps {
				po := pipelineOut{Name: p.Name, Description: p.Description, Version: p.Version,
					MaxAttempts: p.MaxAttempts, MaxDerived: p.MaxDerived, Baskets: p.Baskets, Steps: make([]pipelineStepOut, len(p.Steps))}
				if po.Baskets == nil {
					po.Baskets = []string{}
				}
				for j, st := range p.Steps {
					po.Steps[j] = pipelineStepOut{Name: st.Name, Plugin: st.Plugin, Input: st.Input, Accept: st.Accept, Params: st.Params, RetryTimeout: st.RetryTimeout}
					if po.Steps[j].Accept == nil {
						po.Steps[j].Accept = []string{}
					}
					if po.Steps[j].Params == nil {
						po.Steps[j].Params = map[string]string{}
					}
				}
				out.Pipelines[i] = po
			}
			return nil, out, nil
		})

	addTool(s, &mcp.Tool{Name: "run_pipeline", Description: s.runPipelineDescription(),
		Annotations: writes("Run pipeline", true, false)},
		func(in, _ *jsonschema.Schema) {
			in.Properties["document_ids"].MaxItems = ptr(maxRunDocuments)
			limits(in, "wait_seconds", 0, maxWaitSeconds)
		},
		func(ctx context.Context, in runPipelineIn) (*mcp.CallToolResult, runPipelineOut, error) {
			if (len(in.DocumentIDs) == 0) == (in.Basket == "") {
				return nil, runPipelineOut{}, docex.Errorf(docex.ErrInvalid, "give document_ids or basket (one of the two)")
			}
			if len(in.DocumentIDs) > maxRunDocuments {
				return nil, runPipelineOut{}, docex.Errorf(docex.ErrTooLarge, "%d documents, more than %d in one call: run the pipeline on their basket instead", len(in.DocumentIDs), maxRunDocuments)
			}
			if in.WaitSeconds < 0 || in.WaitSeconds > maxWaitSeconds {
				return nil, runPipelineOut{}, docex.Errorf(docex.ErrInvalid, "wait_seconds %d: want 0 to %d", in.WaitSeconds, maxWaitSeconds)
			}
			target := engine.RunTarget{DocumentIDs: in.DocumentIDs}
			if in.Basket != "" {
				b, err := s.resolveBasketFor(ctx, "pipeline.run", in.Basket, in.Pipeline)
				if err != nil {
					return nil, runPipelineOut{}, err
				}
				target.BasketID = b.ID
			}
			ids, err := s.s.RunPipeline(ctx, in.Pipeline, target)
			if err != nil {
				return nil, runPipelineOut{}, err
			}
			out := runPipelineOut{JobIDs: ids}
			var st engine.JobsStatus
			if in.WaitSeconds > 0 {
				wctx, cancel := context.WithTimeout(ctx, time.Duration(in.WaitSeconds)*time.Second)
				st, err = s.s.WaitJobs(wctx, ids, waitInterval, nil)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					// Still pending: the status says so. It is read again,
					// as the wait may have ended in the middle of a read
					// (a zero status would say every job is done).
					st, err = s.s.JobsStatus(ctx, ids)
				}
			} else {
				st, err = s.s.JobsStatus(ctx, ids)
			}
			if err != nil {
				// The jobs are queued whatever ended the wait: the error
				// names them, and the wait's failure is audited
				// (pipeline.wait), a cancelled call's as interrupted.
				err = fmt.Errorf("stopped waiting for the %d jobs of pipeline %s, which were queued and go on without this call (get_job shows each; job_ids %s): %w",
					len(ids), in.Pipeline, strings.Join(ids, ", "), err)
				if ctx.Err() != nil && !errors.Is(err, docex.ErrInterrupted) {
					err = fmt.Errorf("%w: %w", docex.ErrInterrupted, err)
				}
				return nil, runPipelineOut{}, s.s.WaitFailed(ctx, in.Pipeline, ids, err)
			}
			out.Status = statusOf(st)
			return nil, out, nil
		})

	addTool(s, &mcp.Tool{Name: "get_job", Description: "Get a pipeline job: its state, error, and the documents each step produced.",
		Annotations: readOnly("Get job")}, nil,
		func(ctx context.Context, in struct {
			ID string `json:"id" jsonschema:"job id (from run_pipeline)"`
		}) (*mcp.CallToolResult, jobOut, error) {
			j, err := s.s.Job(ctx, in.ID)
			if err != nil {
				return nil, jobOut{}, err
			}
			out := jobOut{ID: j.ID, Pipeline: j.Pipeline, Version: j.Version, DocumentID: j.DocumentID, State: j.State,
				Attempts: j.Attempts, MaxAttempts: j.MaxAttempts, ErrorCode: j.ErrorCode, Error: j.Error,
				Steps: make([]jobStepOut, len(j.Steps)), Outputs: []string{}, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
			seen := map[string]bool{}
			for i, st := range j.Steps {
				outs := st.Outputs
				if outs == nil {
					outs = []string{}
				}
				out.Steps[i] = jobStepOut{Step: st.Step, InputID: st.InputID, Outcome: st.Outcome, Outputs: outs}
				for _, id := range outs {
					if !seen[id] {
						seen[id] = true
						out.Outputs = append(out.Outputs, id)
					}
				}
			}
			return nil, out, nil
		})
}

func (s *Server) runPipelineDescription() string {
	d := "Run a pipeline on documents, or on every original document of a basket (not those its steps derived): one job per document. Needs the writer role. "
	if s.cfg.Worker {
		return d + "This server runs the jobs; wait for them with wait_seconds, or poll get_job."
	}
	return d + "Jobs run on a docex worker; wait for them with wait_seconds, or poll get_job."
}
