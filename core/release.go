package core

// ReleaseRules are the site policy's rules for output checking: where the
// release spool is, whose votes count, how many, and the automatic
// pre-checks a file must pass before it may join a release request.
type ReleaseRules struct {
	// Dir is the release spool; "" when the policy names none.
	Dir string `json:"release_dir"`
	// CheckerKeys are the output checkers' public keys: only their votes count.
	CheckerKeys []PolicyKey `json:"output_checker_keys"`
	// ReviewsRequired independent approvals release a file.
	ReviewsRequired int `json:"release_reviews_required"`
	// MaxBytes is the largest file that may be requested.
	MaxBytes int64 `json:"release_max_bytes"`
	// Types are the file name extensions that may be requested (lower case,
	// without the dot).
	Types []string `json:"release_allowed_types"`
	// MaxRows is the most data rows a CSV or TSV file may have.
	MaxRows int `json:"release_max_rows"`
	// ForbiddenColumns are glob patterns (matched case-insensitively) of
	// CSV/TSV column names that identify people.
	ForbiddenColumns []string `json:"release_forbidden_columns"`
	// CountColumns are glob patterns of the column names that hold counts.
	CountColumns []string `json:"release_count_columns"`
	// MinCount: a count column value above zero and below it is a small
	// count, which a checker must judge.
	MinCount int `json:"release_min_count"`
}

// Release defaults, used for every rule the policy does not set.
var (
	DefaultReleaseReviews   = 2
	DefaultReleaseMaxBytes  = int64(16 << 20)
	DefaultReleaseTypes     = []string{"csv", "tsv", "txt", "md", "json", "png", "svg", "pdf", "html"}
	DefaultReleaseMaxRows   = 100000
	DefaultReleaseForbidden = []string{"*patient_id*", "*patientid*", "*nhs_number*", "*nhs_no*", "*nhsnumber*", "*chi_number*",
		"*date_of_birth*", "dob", "*postcode*", "*post_code*", "*zip_code*", "*address*", "*email*", "*phone*",
		"name", "*first_name*", "*last_name*", "*forename*", "*surname*", "*full_name*", "*ssn*", "*social_security*", "*mrn*"}
	DefaultReleaseCountColumns = []string{"n", "count", "*_count", "count_*", "n_*", "*_n", "freq", "frequency", "*_freq"}
	DefaultReleaseMinCount     = 10
)

// Release returns the policy's release rules, defaults filled in.
func (p *Policy) Release() ReleaseRules {
	r := ReleaseRules{}
	if p != nil {
		r = p.ReleaseRules
	}
	if r.ReviewsRequired == 0 {
		r.ReviewsRequired = DefaultReleaseReviews
	}
	if r.MaxBytes == 0 {
		r.MaxBytes = DefaultReleaseMaxBytes
	}
	if r.Types == nil {
		r.Types = DefaultReleaseTypes
	}
	if r.MaxRows == 0 {
		r.MaxRows = DefaultReleaseMaxRows
	}
	if r.ForbiddenColumns == nil {
		r.ForbiddenColumns = DefaultReleaseForbidden
	}
	if r.CountColumns == nil {
		r.CountColumns = DefaultReleaseCountColumns
	}
	if r.MinCount == 0 {
		r.MinCount = DefaultReleaseMinCount
	}
	return r
}

// SpoolEntry is one entry of the release spool's log: its number (from 1;
// 0 for a file whose name is not a number), file name and bytes.
type SpoolEntry struct {
	Seq  int
	Name string
	Data []byte
}
