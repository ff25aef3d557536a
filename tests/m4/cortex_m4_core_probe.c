/* Compiled (never run) by tests/test_cortex_m4_core.py with CMSIS-Core on the include
 * path: firmware/platform/cortex_m4_core.h's own definitions, which the platform code uses
 * when CMSIS-Core is absent, must equal CMSIS-Core's -- every base address, member
 * offset and width, and bit the platform code uses. */
#include <stddef.h>

#include "cortex_m4_core.h"

#if !defined(RNNPOOL_CORE_FROM_CMSIS) || !defined(__CORE_CM4_H_GENERIC)
#error "CMSIS-Core (ARMCM4.h -> core_cm4.h) is not on the include path: nothing to compare"
#endif

#define SAME(cmsis, ours) _Static_assert((cmsis) == (ours), #cmsis " != " #ours)
#define SAME_MEMBER(cmsis_type, our_type, member)                                    \
  _Static_assert(offsetof(cmsis_type, member) == offsetof(our_type, member),         \
                 #cmsis_type "." #member ": offsets differ");                        \
  _Static_assert(sizeof(((cmsis_type*)0)->member) == sizeof(((our_type*)0)->member), \
                 #cmsis_type "." #member ": widths differ")

SAME(SCB_BASE, RNNPOOL_CORE_SCB_BASE);
SAME_MEMBER(SCB_Type, rnnpool_core_scb, CPACR);

SAME(SysTick_BASE, RNNPOOL_CORE_SYSTICK_BASE);
SAME_MEMBER(SysTick_Type, rnnpool_core_systick, CTRL);
SAME_MEMBER(SysTick_Type, rnnpool_core_systick, LOAD);
SAME_MEMBER(SysTick_Type, rnnpool_core_systick, VAL);
SAME_MEMBER(SysTick_Type, rnnpool_core_systick, CALIB);
SAME(SysTick_CTRL_ENABLE_Msk, RNNPOOL_CORE_SYSTICK_CTRL_ENABLE);
SAME(SysTick_CTRL_TICKINT_Msk, RNNPOOL_CORE_SYSTICK_CTRL_TICKINT);
SAME(SysTick_CTRL_CLKSOURCE_Msk, RNNPOOL_CORE_SYSTICK_CTRL_CLKSOURCE);
SAME(SysTick_LOAD_RELOAD_Msk, RNNPOOL_CORE_SYSTICK_LOAD_RELOAD);

SAME(DWT_BASE, RNNPOOL_CORE_DWT_BASE);
SAME_MEMBER(DWT_Type, rnnpool_core_dwt, CTRL);
SAME_MEMBER(DWT_Type, rnnpool_core_dwt, CYCCNT);
SAME(DWT_CTRL_CYCCNTENA_Msk, RNNPOOL_CORE_DWT_CTRL_CYCCNTENA);

SAME(DCB_BASE, RNNPOOL_CORE_DCB_BASE);
SAME_MEMBER(DCB_Type, rnnpool_core_dcb, DHCSR);
SAME_MEMBER(DCB_Type, rnnpool_core_dcb, DCRSR);
SAME_MEMBER(DCB_Type, rnnpool_core_dcb, DCRDR);
SAME_MEMBER(DCB_Type, rnnpool_core_dcb, DEMCR);
SAME(DCB_DEMCR_TRCENA_Msk, RNNPOOL_CORE_DCB_DEMCR_TRCENA);
