// FlowerWire: placeholder until its issue lands.
