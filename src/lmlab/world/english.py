"""English words (and well-known names) that the name grammar of names.py could produce: generated names avoid them.

Derived once, offline, from the project's sample corpora in ../shared/data (WikiText-2 valid, the TinyStories
2 MB sample, Tiny Shakespeare, PTB valid, Multi30k train.en, SST-2 train, the IMDB/Amazon/Yelp labelled sentences):
every distinct lowercase word of 4–12 letters that matches the syllable pattern (onset + vowel)+ [coda] [suffix].
Stored here, not read at run time, so that generation never depends on files outside the package and stays
byte-identical everywhere. If ONSETS/NUCLEI/CODAS/SUFFIXES change, rebuild the list with that regex over the same
corpora.
"""

WORDS = frozenset("""
aria baba babak babe babes baby bade baden bagel bail bake baker bakery bakes bale baleful bales banal banality
banana bananas band bane banish banister baran bare barely bares barista barometer barometric baron basal base basel
basely baseman basemen baser bases basic basidia basilisk basin basis bask basta bate bateman bates bath bathe
bather bathes bathos baton bavarian bazadona bean befal before began begin begone begrand begun beige bela belike
belize bemoan benatar bend benton beside besides bestir betake beth betide betimes betroth beverage beverages beware
bide bides bigamy bike biker bikes bikina bikini bikinis bile binary bind biplane bipolarity bison bite biter bites
bland boba bobby bobo bode bodes bodily body bogus bolado bolero bona bond bondish bone bones bonita bono bonus
bonuses bonville borader bore boredom bores bose bosom boston both bother bound boundeth bove brady brain brainer
brainy brake bran brand brandish bras bravado brave bravely braver bravery braves bravo bravura brazen brazil
brazilian brendan breton brevity brian bribe bridal bride brigade brigades brigand brim brine brinish brisk bristol
britain british broder brody broke broken broker brokerage bromides bronco bros broth brother brushes brutal
brutality brutish brutus bryan burton bury busby buses bushel bushes bushy busily buster busy button bygone byler
byron bytes corp daily daisy dakota dakotas dale daly damage damages damask dame dames damian damon dana dane danis
danish dare dares dashes dashiki data date dates dave davis dean debase debate debby debile debris deco defend
definately define defines definite definitely definitive definitively defuses defy degenerate degenerates degrades
deity delaware delegate delegates delete deli delia deliberate deliberately deliberative delish deliver delivery
deluge demand demean demi demise demo demolishes demon demonic demos denim deniro denis denise denote deny depend
depopulate depose depositary depository deputy derby derek derisive derivative derive derives derogatory desire
desires desirous desk desolate destin destiny detail detain deter detour detritus deva developer devil devilish
devine devise devises devito devon devonian devos devote devour dian dido digital dili dilutes dime dina dine diner
dinos diploma diplomas diplomatic dire direful diry disability disaster disco dish dishes dishonesty dishonour disk
disport distaste distasteful diva dive diver dives divide dividend divider divides divideth divine divinely divines
divisive dizy dolby dole doleful doles dolorous dolour dome domestic dominate dominates domino done donovan dope
dorado doran doris dorothy dosage dose dosen doses doshas dote doth dour douses dove dover doves doze dozen dozes
drago dragon drain drainage dram drama dramas dramatic dramatize dramedy drape drastic drave drek dridi drive drivel
driven driver drives driveth drove drum dude dudes duke dukedom dukes duly dumas dune dunes dupe duper duris dusk
dustin dusty dutiful duty dylan dynamic dynamite dynastic dynasty dystopian fabian fabric fabulous fade fades fail
failure failures fain fair fairer fairy fairytale faith fake falco fame family famine famish famous fanatic fane
fare fares faso fasten faster fatal fate fateful fates father fathom fatigate favor favorite favorites favour
favourite favourites federal federary fedora feisty feline felix felon felony female females femina feminine feral
fester festival festive festively fetal fetishes fetishistic fever feverous fiba fibre fide fidel fidelity fifa
fifes figure figures figurine figurines file files final finale find fine finely finer finery fines finish finishes
finland fire fireman firemen fires fish fisher fishes fishy fisk five fives folic fond forages fore forefather
forefend forego foreground foreman forerun forever forum foster foul fouler found four fragile frail frame frames
franco fraser frei frenetic fresco fresher frida frigate frigates frisk frivolous frolic from frosty froth frothy
froze frozen fulton fume fumes fund funeral funerary fury fuse fuselage fuses fustian fustily fusty futile futility
future futures futuristic gage gain gake gale galen galore galoshes game gamely games gamesome gamester gape gapes
garage garages garish garland gary gasoline gate gates gather gator gave gavin gaza gaze gazes geese geisha geishas
gelados gelati gene general generate generates generative generator generic generosity generous genesis genetic
geneva genus gere gesture gestures giber gigolo giles gina girolamo gitano give given giver gives gone gore
goremeister gory goth gothenburg gothic grad grade grader grades grain grainy grand granite grape grapes gras grate
grateful grater grates gratify gratis gratitude gratulate grave gravel graven graver graves gravity graze gregory
grenade grenades greta grim grimes grin grind gripe gripes groan ground grouse grove groves guber guru gurus gushy
gusto gyro gyros gyves holm kabuki kaige kaki kamala kanaly kane kaplan kapur karate karen kari karim karin katarina
kate kates katharina katherine kathy katrina katy kazan keira keith kenyan kevin kilometer kilometre kilometres
kimino kimono kimonos kind kine kinetic kite kites kodak komodo korean koury kramer kravis kris kudos kunis kuras
kurys kyle label labor laboratory laborer labour labrador labute lade laden lady lagaan lain lake lakes lakeside
lalor lama lamar lame lamely lamer lames land lane lanes lapel laramide larum laser late lately later lateral lath
lathan latifa latin latino latinos latitude lava lave laverton lavish laze lazily lazy lean lebanon lebron leda
legal legality legend leges legitimate legitimately lego legos leiger leis leisure leisurely lemon lemonade lend
leni lenity lethal lethe level leven lever leverage levi levity levy liberal liberality libido libor librarian
library lieth life lifestyle lifetime ligand lika like likely liken likes lila lilia lilo lily liman lime limestone
limo lina line linen liner lines lino lisa listen listener literal literarily literary literate literature live
lively liven liver livery lives liveth livia liza loan lobby lobotomy loco logan logic logistic logo logos lola
lolita lone lonely lore lose loser loses losin lotus louder lour lousy louvre love lovel lovely lover loves loveth
lozel lugosi luke lulu luminous luna lunar lunatic lund lunes lure luster lusty lute lutes luther lutheran luzon
lyne lyra mabel madam made madeline madigan madison madras mafia magazine magazines magi magic maiden mail maim main
maine mainland maisy make maker makes maketh makin malady malaise male maler males malik mama manage manager manages
manas mane manes mania manic manifesto manikin manila manipulate manipulates manipulative manitoba manor manure many
maple marathon marco maria marian marilyn marina marine mariner marines maritime maruga mary maryland masala masato
mask mason master masterton matador mate mates math matrix matron mature maturity maze mazel mean medal medatative
medem media median medic meditate meditative mega megamind megan mein melodrama melodramas melodramatic melody melon
melville memorabilia memory mend menu menus mere meredith merely meri meridian meshes mesopotamia metal mete meter
methodology metre metres metric metro metropolis metropolitan mibii midair midland migratory mika mike mikes milan
mile miles milestone milestones militarily military militia mime mimetic mimi mimic mind mine miner mineral
minerature mines mini minim minimal minimise minimize minimo minimum minister minivan minola minor minority minos
minus minute minutely minutes mira mirage mire miry misery mishima misogyny mista mistake mistaken mistakes mister
misty misuse mitigate moan mobile mobility modal mode model modem moderate moderately modes modesty modus mole moles
molina monastery monetary moni monitor monopoly monotone monotonous monotony mopes mora moraines moral morale
moralistic morality moralize more mores moresby moron moronic morose morton mosaic mose moth mother mothy motivate
motive motives moto motor motorola motorolas moulin mound mouse moutain mouth move mover moves moveth mulan mule
mules mural muse mushy music muster musty mutates mute mutinous mutiny mutton muzak myles mysore mystery mystic myth
mythic mythology naan nabisco nada nadia nadir nail nair naive nakata nalin name namely names namesake namibia nano
napa napes naples napoli nary nasa nasty natal nathan native natives nativity natural naturalistic nature natures
naval nave navel navigate navigates navy nazi nazis nebrida negate negative negatively negatives negativity negro
negulesco neil neither nemesis nemo nero nestor nevada never neverland neville nigel nigeria nigiri nike nikon nile
nina nine ninety niro nobel nobility nobody nobu nokia nolan nominal nonage none nope nora norton nose nosedive
noses nosy note notes notify notre nourish nourisheth nova novak novel nubile nude nudity numa numerous pabulum
padre pagan page pages paige pail pain pair pakistan palate palates pale paler palestine palestinian palisade paly
pamela panama panasonic pandora pane panel panes panic panorama panoramic papa papasan paper papin para parade
parades paradise paradiso paragon paramedic paramour paranoia parasail parasailer parasite parasites parasol pareles
paris parish parody parole parton pasolini pasta pastas paste pastel pastime pastor pasture pastures pasty pate
pates path pathetic pathology pathos patric patrimony patrol patron pavel pedal pedestal pedro pegasus peise pelosi
peloton penal penelope penetrate penury perabo peril perilous perimeter perish peru peruse peruses peruvian petal
pete peter petite petri petronas pike pikes pilate pilates pile piles pinata pine pines pipe pipeline pipelines
piper pipes pirate pirates pisa pistol pita pith pithy pitiful pity pivotal plain plainer plan plane planer planes
planetary plashy plaster plastic plata plate plater plates platinum platitudes plato plaza plebeii plethora plume
plumes plus pluto plymouth poke pokemon poker pokes poky poland polar polaris pole polemic poler poles polish
polishes polite politely politic polity polo polos pomegranate pomeranian pond pony ponytail pope poperin popular
popularity populates populous pore porous port pose poses positive positively positives postal poster posterity
postinos posture potato pother pothole pound pour pouty puma punish punishes punitive puny pupil pure purely purer
puritan purity pusan pushes radar rafa rage rages ragozine raider rail railer raimi raimondi rain rainy raise raises
raison rake rakes ramada rand rape rapes rapport rare rarely rarer rarity rashomon rasta rate rates rather rave
ravel raven ravenous raver ravin ravine ravish ravisher ravoli raze razor razure rebate rebel rebound rebuke rebukes
redeliver redime redone reese refer refinery refrain refreshes refrigerator refuge refund refusal refuse refuses
regain regal regalia regenerate regia regime regimen register regular regulatory reigen rein reiterate relate
relates relative relatively relatives relic relish rely remade remain remake remakes remedy remind remix remote
remotely removal remove removes remy rend renegade reno renovate repair repel repetitive repetitively replenish
replete reply report repose reposeth repute rerun resale reside resides resolute resolutely resonate restage restate
resteth restorative restore resume resumes retail retailer retain retake retire retires retro retrograde revel
revelatory revere reverend revigorates revise revitalize revival revive revives revoke riband ribisi ribosomal rico
ride rider rides rideth rife rigor rigorous rigour rind riparian ripe ripen rise risen rises risk rita rite rites
rival rive river rivera roan robby robe robes robin robotic rodan rode roger rogero roland role roles roman romanek
romani romania romano rome romero romoli rona rope roper ropery ropes rosa rosaline rosary rose rosemary rosen roses
roster rosy rote roth rouge round rouse rouses route routes routine routines rove rover rubin ruby rude rudely
rudesby rudy rugby rule ruler rules rumor rumour rumourer runagate rural ruse rusher rushes rusi rustic rusty ruth
rutland ryan ryder rymer sabara sabine sabotage sabotages sabre sabres sade sadistic safari safe safely safer safety
saga saganaki sage saigon sail sailor saith sake sakes salary sale sales salomon salon salton salute saluteth
samaritan same samira samurai sand sane sanitize sanity sara sari saris sashes sashimi satan satanic satin satire
satiric savage savagely savalas save saver saves savor savory savour savoury sean sebastian sedan sedate seeth sega
segal seiko seize seizes seizure seizures selby selena semen semester semi semifinal seminar semiramis senate
senator send senis senor separate separately separates seperate serena serene serenely serenity sesame setebos seth
seven sever several severe severely severity shabby shade shades shady shafer shake shaken shakes shaky sham shame
shameful shames shan shane shape shapen shapes shapiro share sharer shares sharon shave shaves shelby sheridan shes
shetland shigeru shimizu shin shine shiner shines shineth shiny shiri shish shiver shone shore shoreline shores
shovel shum shun shute shyly siberia siberian sibyl side sideline sidelines sides sigeia silo similar simile simon
simone simulate sinai sinatra sine sinister sinon sire siren sister sisulu site sites sith situ size sizes sober
soda sodas sofa sofas sofia solar solaris sole solei solely soles solider solidify solidity solitary solitude solo
solomon solomonic solum somalia some somebody somerville sometime sometimes sonic sonoma sony soporific sore sorely
sorority sotheby soto soul sound sour sous south southam souvenir sport stability stabilize stage stages stagy stain
stair stake stakes stale stalemate stamina stan stand standby standeth staple stapler staples star stare stares
stasis state stately states static stature status statute statutes statutory staves stefan stein steiner steinis
stela stem sterile steve steven stevenon stile stimulate stimulus stir stoic stokes stol stole stolen stone stoner
stones stony storage store stores story storyline storylines stove study stupidity style styles stylish stylistic
stylus subaru sudan sudeikis sugar sugarland sugary suge sumatra sumo super support sure surefire surely surer
surety susan sushi sustain sutherland suzuki suzy synonymous syria syrupy system systema systematic tabour taco tail
tailor taipei takashi take taken taker takes takeshi taketh tale tales tame tamer tames tamura tanovic tapas tape
taper tapes tara task taste tasteful tastes tasty tater teeth telanovela telegram telenovela telerate tend tenor
tenure testify testimony testosterone testy tether teva thai thailand thames than their them thematic theme themes
then therapy there thereby therefore therein theretake thereto these thesis thin thine this thither thomas those
thou thousand thulani thus tian tiber tidal tide tides tidy tiger tiki tile tiles time timeframe timely timer times
timor timorous timothy tina tiny tipu tirade tiramisu tire tires tiresome tiresomely titan tithe titular titus toby
toge together token tolerate tomato tomatos tome tonal tone tones tony topic tore torii toro total totalitarian tote
totem tour touse trade trader trades tragedian tragedy tragic trail trailer train trainer traitor traitorous tram
trapeze trashy travail travel travelator traveler travesty travis trek tremor trend tres trevor tribal tribe tribes
tribunal tribune tribunes tributary tribute trikes trilogy trim trinity tripe triple tripoli trite triton tron trond
trope tropes tropic troth troubadour troupe trovato trove truly trusty truth tuba tubas tube tubes tubular tudor
tufano tumor tuna tundish tune tuneful tunes tunic tunis tunisia tunisian tutor tutu tutus tyco tyler type types
tyrian tyson vader vagabond vail vain vainer valeria validity valour vanish vanity vaporize vaporous vapour vary
vase vastidity vega vegan vegas vegetarian veil vein velodrome velure velutus venality venom venomous venus venuto
vera vere verete verily verite verity verizon verona very vestal vesture veteran veterinarian veto vibe vidal vigil
vigour vile vilely vine vines vinyl viper viperous vira virou virus visage vise visibility visitor visor vista
vistas vital vitality viva viveka vivi vivian vivre volatile volatility volubility volume volumes vote votes
vulakoro ware zaidan zales zany zaza zebra zenith zero zhou zishe zone zones zune
""".split())
