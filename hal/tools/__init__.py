"""Tools around the appliance: the doctor, the motor-MCU emulator, the simulator recorder."""
