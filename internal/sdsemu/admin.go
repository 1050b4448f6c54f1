package sdsemu

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// adminHandler serves the emulator's own control API under /_emu/ (not part of SDS):
//
//	GET    /_emu/faults              armed faults
//	POST   /_emu/faults              arm a JSON array of faults
//	DELETE /_emu/faults              disarm all faults
//	GET    /_emu/jobs                all jobs
//	POST   /_emu/jobs/{id}/complete  finish a pending job now
//	POST   /_emu/jobs/{id}/abort     abort a pending job; optional body {"message": "..."}
//	GET    /_emu/requests            the SDS request log (keys redacted)
//	DELETE /_emu/requests            empty the request log
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_emu/faults", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, s.Faults())
	})
	mux.HandleFunc("POST /_emu/faults", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fs, err := ParseFaults(data)
		if err == nil {
			err = s.AddFault(fs...)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_emu/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_emu/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, s.Jobs())
	})
	mux.HandleFunc("POST /_emu/jobs/{id}/complete", func(w http.ResponseWriter, r *http.Request) {
		writeJobResult(w, s.CompleteJob(r.PathValue("id")))
	})
	mux.HandleFunc("POST /_emu/jobs/{id}/abort", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Message string `json:"message"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, "body must be empty or {\"message\": \"...\"}: "+err.Error(), http.StatusBadRequest)
			return
		}
		writeJobResult(w, s.AbortJob(r.PathValue("id"), body.Message))
	})
	mux.HandleFunc("GET /_emu/requests", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, s.Requests())
	})
	mux.HandleFunc("DELETE /_emu/requests", func(w http.ResponseWriter, r *http.Request) {
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeAdminJSON(w http.ResponseWriter, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentJSON)
	_, _ = w.Write(append(data, '\n'))
}

func writeJobResult(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrJobNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrJobNotPending):
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
