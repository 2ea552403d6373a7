// FedAvg: placeholder until its issue lands.
