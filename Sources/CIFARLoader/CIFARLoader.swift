// CIFARLoader: placeholder until its issue lands.
