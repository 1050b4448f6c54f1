package sdsemu

import "strconv"

// loadDataflowJob is a load or rollback job as its create and status responses (and the job
// list) show it: a DataflowJob with entity counts, a datasource link once Completed and, for a
// load, a failed output link once Aborted.
type loadDataflowJob struct {
	job        Job
	self       link
	dataSource *link
	failed     *link
	listed     bool // in the job list: carries the data source name
}

func (s *Server) loadResource(base string, j Job) loadDataflowJob {
	path := "/REST/v1/dataflows/LoadDataSource/"
	if j.Kind == JobRollback {
		path = "/REST/v1/dataflows/DataSourceRollback/"
	}
	r := loadDataflowJob{job: j, self: link{role: "self", url: base + path + j.ID}}
	switch j.Status {
	case StatusCompleted:
		r.dataSource = &link{role: "datasource", name: "service", url: dataSourceURL(base, j.AccessID, j.DataSourceName)}
	case StatusAborted:
		if j.Kind != JobRollback {
			r.failed = &link{role: "output", name: "failed", url: r.self.url + "/output/failed"}
		}
	}
	return r
}

type jsonLoadJob struct {
	Type                 string     `json:"__type"`
	ID                   string     `json:"id"`
	Links                []jsonLink `json:"links"`
	Name                 string     `json:"name,omitempty"`
	CompletedDate        string     `json:"completedDate,omitempty"`
	CreatedDate          string     `json:"createdDate"`
	Description          string     `json:"description"`
	ErrorMessage         string     `json:"errorMessage,omitempty"`
	FailedEntityCount    int        `json:"failedEntityCount"`
	ProcessedEntityCount int        `json:"processedEntityCount"`
	Status               string     `json:"status"`
	TotalEntityCount     int        `json:"totalEntityCount"`
}

func (r loadDataflowJob) links() []link {
	ls := []link{r.self}
	for _, l := range []*link{r.dataSource, r.failed} {
		if l != nil {
			ls = append(ls, *l)
		}
	}
	return ls
}

// counts: nothing is known while the job is pending; a finished load has read every entity.
func (r loadDataflowJob) counts() (total, processed, failed int) {
	if r.job.Status == StatusPending || r.job.Kind == JobRollback {
		return 0, 0, 0
	}
	return r.job.EntityCount, r.job.EntityCount, r.job.FailedEntityCount
}

func (r loadDataflowJob) jsonValue() any {
	total, processed, failed := r.counts()
	v := jsonLoadJob{
		Type:                 typeDataflowJob,
		ID:                   r.job.ID,
		CreatedDate:          jsonDate(r.job.Created),
		Description:          string(r.job.Kind),
		ErrorMessage:         r.job.ErrorMessage,
		FailedEntityCount:    failed,
		ProcessedEntityCount: processed,
		Status:               string(r.job.Status),
		TotalEntityCount:     total,
	}
	if r.listed {
		v.Name = r.job.DataSourceName
	}
	for _, l := range r.links() {
		v.Links = append(v.Links, l.json())
	}
	if !r.job.Completed.IsZero() {
		v.CompletedDate = jsonDate(r.job.Completed)
	}
	return v
}

func (r loadDataflowJob) writeXML(x *xmlWriter) {
	total, processed, failed := r.counts()
	x.start("DataflowJob")
	if r.listed {
		x.elem("Name", r.job.DataSourceName)
	}
	x.elem("Id", r.job.ID)
	for _, l := range r.links() {
		l.writeXML(x)
	}
	x.elem("Description", string(r.job.Kind))
	x.elem("Status", string(r.job.Status))
	x.elem("CreatedDate", xmlDate(r.job.Created))
	x.date("CompletedDate", r.job.Completed)
	x.elem("TotalEntityCount", strconv.Itoa(total))
	x.elem("ProcessedEntityCount", strconv.Itoa(processed))
	x.elem("FailedEntityCount", strconv.Itoa(failed))
	if r.job.ErrorMessage != "" {
		x.elem("ErrorMessage", r.job.ErrorMessage)
	}
	x.end("DataflowJob")
}

// publishResource is a DataSourcePublishFromStaged job: Accepted with its $getstatus self link
// when created, then named after the data source with its status, as the docs show.
type publishResource struct {
	job      Job
	base     string
	accepted bool // the create response
}

const statusAccepted = "Accepted"

func (p publishResource) selfURL() string {
	return p.base + "/REST/v1/data/jobs/" + p.job.ID + "/$getstatus"
}

func (p publishResource) status() string {
	if p.accepted && p.job.Status == StatusPending {
		return statusAccepted
	}
	return string(p.job.Status)
}

type jsonPublishJob struct {
	Type          string     `json:"__type"`
	ID            string     `json:"id"`
	Links         []jsonLink `json:"links,omitempty"`
	Name          string     `json:"name,omitempty"`
	CompletedDate string     `json:"completedDate,omitempty"`
	CreatedDate   string     `json:"createdDate"`
	Description   string     `json:"description"`
	ErrorMessage  string     `json:"errorMessage,omitempty"`
	Status        string     `json:"status"`
}

func (p publishResource) jsonValue() any {
	v := jsonPublishJob{
		Type:         typeDataServiceJob,
		ID:           p.job.ID,
		CreatedDate:  jsonDate(p.job.Created),
		Description:  string(JobPublishStaged),
		ErrorMessage: p.job.ErrorMessage,
		Status:       p.status(),
	}
	if p.accepted {
		v.Links = []jsonLink{{Role: "self", URL: p.selfURL()}}
	} else {
		v.Name = p.job.DataSourceName
	}
	if !p.job.Completed.IsZero() {
		v.CompletedDate = jsonDate(p.job.Completed)
	}
	return v
}

func (p publishResource) writeXML(x *xmlWriter) {
	x.start("DataServiceJob")
	if !p.accepted {
		x.elem("Name", p.job.DataSourceName)
	}
	x.elem("Id", p.job.ID)
	if p.accepted {
		link{role: "self", url: p.selfURL()}.writeXML(x)
	}
	x.elem("Description", string(JobPublishStaged))
	x.elem("Status", p.status())
	x.elem("CreatedDate", xmlDate(p.job.Created))
	x.date("CompletedDate", p.job.Completed)
	if p.job.ErrorMessage != "" {
		x.elem("ErrorMessage", p.job.ErrorMessage)
	}
	x.end("DataServiceJob")
}
