/* Output and exit through ARM semihosting (QEMU: -semihosting-config enable=on). */
#ifndef RNNPOOL_SEMIHOSTING_H_
#define RNNPOOL_SEMIHOSTING_H_

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a NUL-terminated string to the host's stdout. */
void semihost_write(const char* text);

/* Ends the emulation with this exit status (SYS_EXIT_EXTENDED). */
void semihost_exit(int status) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* RNNPOOL_SEMIHOSTING_H_ */
