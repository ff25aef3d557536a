/* The Cortex-M4 core registers the platform code uses, under CMSIS-Core's names.
 *
 * With CMSIS-Core on the include path (TFLM's downloads: the firmware built with TFLM_DIR)
 * they come from ARMCM4.h -> core_cm4.h. Without it (the M4 kernel harnesses, which need no
 * TFLM) this header defines the few the platform code touches -- SCB->CPACR, SysTick,
 * DWT->CTRL/CYCCNT, DCB->DEMCR, their bits, __DSB/__ISB -- as CMSIS-compatible structs at
 * the addresses the ARMv7-M Architecture Reference Manual (ARM DDI 0403E) gives them.
 *
 * The fallback's layout is declared under this header's own names (rnnpool_core_*) in both
 * cases, so that with CMSIS-Core present tests/m4/cortex_m4_core_probe.c can static-assert
 * that every base address, member offset and bit equals CMSIS-Core's
 * (tests/test_cortex_m4_core.py): the two cannot drift apart. */
#ifndef RNNPOOL_CORTEX_M4_CORE_H_
#define RNNPOOL_CORTEX_M4_CORE_H_

#include <stdint.h>

/* ---- the fallback's layout ----------------------------------------------------------------- */

/* B3.2 System Control Space: the System Control Block starts at 0xE000ED00 (CPUID); the
 * Coprocessor Access Control Register, CPACR, is at 0xE000ED88 (CP10/CP11 = the FPU,
 * bits [23:20]). Only CPACR is named; the words before it are padding. */
#define RNNPOOL_CORE_SCB_BASE 0xE000ED00UL
typedef struct {
  uint32_t RESERVED_0x000_0x084[34];
  volatile uint32_t CPACR; /* 0x088 */
} rnnpool_core_scb;

/* B3.3 The system timer, SysTick: SYST_CSR 0xE000E010, SYST_RVR 0xE000E014,
 * SYST_CVR 0xE000E018, SYST_CALIB 0xE000E01C. SYST_CSR: ENABLE bit 0, TICKINT bit 1,
 * CLKSOURCE bit 2 (1 = the processor clock); SYST_RVR: RELOAD bits [23:0]. */
#define RNNPOOL_CORE_SYSTICK_BASE 0xE000E010UL
typedef struct {
  volatile uint32_t CTRL;        /* SYST_CSR */
  volatile uint32_t LOAD;        /* SYST_RVR */
  volatile uint32_t VAL;         /* SYST_CVR */
  volatile const uint32_t CALIB; /* SYST_CALIB */
} rnnpool_core_systick;
#define RNNPOOL_CORE_SYSTICK_CTRL_ENABLE (1UL << 0)
#define RNNPOOL_CORE_SYSTICK_CTRL_TICKINT (1UL << 1)
#define RNNPOOL_CORE_SYSTICK_CTRL_CLKSOURCE (1UL << 2)
#define RNNPOOL_CORE_SYSTICK_LOAD_RELOAD 0x00FFFFFFUL

/* C1.8 The Data Watchpoint and Trace unit: DWT_CTRL 0xE0001000 (CYCCNTENA bit 0),
 * DWT_CYCCNT 0xE0001004. */
#define RNNPOOL_CORE_DWT_BASE 0xE0001000UL
typedef struct {
  volatile uint32_t CTRL;   /* DWT_CTRL */
  volatile uint32_t CYCCNT; /* DWT_CYCCNT */
} rnnpool_core_dwt;
#define RNNPOOL_CORE_DWT_CTRL_CYCCNTENA (1UL << 0)

/* C1.6 Debug system registers: DHCSR 0xE000EDF0, DCRSR 0xE000EDF4, DCRDR 0xE000EDF8,
 * DEMCR 0xE000EDFC (TRCENA bit 24: the DWT's clock). CMSIS-Core calls the block DCB. */
#define RNNPOOL_CORE_DCB_BASE 0xE000EDF0UL
typedef struct {
  volatile uint32_t DHCSR;
  volatile uint32_t DCRSR;
  volatile uint32_t DCRDR;
  volatile uint32_t DEMCR;
} rnnpool_core_dcb;
#define RNNPOOL_CORE_DCB_DEMCR_TRCENA (1UL << 24)

/* ---- CMSIS-Core's names ------------------------------------------------------------------------ */

#if defined(__has_include)
#if __has_include("ARMCM4.h")
#define RNNPOOL_CORE_FROM_CMSIS 1
#endif
#endif

#if defined(RNNPOOL_CORE_FROM_CMSIS)
#include "ARMCM4.h" /* the device's configuration, then core_cm4.h */
#else
typedef rnnpool_core_scb SCB_Type;
typedef rnnpool_core_systick SysTick_Type;
typedef rnnpool_core_dwt DWT_Type;
typedef rnnpool_core_dcb DCB_Type;

#define SCB_BASE RNNPOOL_CORE_SCB_BASE
#define SysTick_BASE RNNPOOL_CORE_SYSTICK_BASE
#define DWT_BASE RNNPOOL_CORE_DWT_BASE
#define DCB_BASE RNNPOOL_CORE_DCB_BASE
#define SCB ((SCB_Type*)SCB_BASE)
#define SysTick ((SysTick_Type*)SysTick_BASE)
#define DWT ((DWT_Type*)DWT_BASE)
#define DCB ((DCB_Type*)DCB_BASE)

#define SysTick_CTRL_ENABLE_Msk RNNPOOL_CORE_SYSTICK_CTRL_ENABLE
#define SysTick_CTRL_TICKINT_Msk RNNPOOL_CORE_SYSTICK_CTRL_TICKINT
#define SysTick_CTRL_CLKSOURCE_Msk RNNPOOL_CORE_SYSTICK_CTRL_CLKSOURCE
#define SysTick_LOAD_RELOAD_Msk RNNPOOL_CORE_SYSTICK_LOAD_RELOAD
#define DWT_CTRL_CYCCNTENA_Msk RNNPOOL_CORE_DWT_CTRL_CYCCNTENA
#define DCB_DEMCR_TRCENA_Msk RNNPOOL_CORE_DCB_DEMCR_TRCENA

/* The barriers as CMSIS-Core's cmsis_gcc.h emits them (full system, a compiler barrier too). */
static inline void __DSB(void) { __asm volatile("dsb 0xF" ::: "memory"); }
static inline void __ISB(void) { __asm volatile("isb 0xF" ::: "memory"); }
#endif

#endif /* RNNPOOL_CORTEX_M4_CORE_H_ */
