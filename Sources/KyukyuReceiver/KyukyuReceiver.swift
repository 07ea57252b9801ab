// The hospital's receiver (issue 9): intake, store, board and the ambulances' acknowledgement stream. Being
// written; this file holds the module's place in the package until it lands.
