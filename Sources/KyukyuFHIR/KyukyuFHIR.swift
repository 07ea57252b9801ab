// The pre-arrival document (issue 9): a FHIR R4 document Bundle on JP Core. The builder and the validator are
// being written; this file holds the module's place in the package until they land.
