"""What every scenario needs: the code under test, pinned processes, the emulator, measurements."""
