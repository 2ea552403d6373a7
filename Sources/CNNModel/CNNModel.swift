// CNNModel: placeholder until its issue lands.
