// Tensor: placeholder until its issue lands.
